# MapSurrogate tests (src/surrogate*.c): real MPI runs; see tests/surrogate/test_surrogate.c.
add_executable(test_surrogate ${CMAKE_SOURCE_DIR}/tests/surrogate/test_surrogate.c)
target_link_libraries(test_surrogate PRIVATE map_surrogate)
foreach(np 1 2 3 4)
  map_mpi_test(test_surrogate ${np} $<TARGET_FILE:test_surrogate>)
endforeach()
# (e) explicit grids: PDGELS must still agree with LAPACK to 1e-12 (and the fits with the truth)
map_mpi_test(test_surrogate_grid2x1 2 $<TARGET_FILE:test_surrogate> -map_surrogate_grid 2,1)
map_mpi_test(test_surrogate_grid2x1 4 $<TARGET_FILE:test_surrogate> -map_surrogate_grid 2,1)
map_mpi_test(test_surrogate_grid2x2_nb8 4 $<TARGET_FILE:test_surrogate> -map_surrogate_grid 2,2 -map_surrogate_block 8)
# (d) identical bits at -n 1..4 with default options; and at -n 2..4 for a fixed explicit 2x1 grid
map_script_test(test_surrogate_hash_np1234 sh ${CMAKE_SOURCE_DIR}/tests/surrogate/check_hash.sh
                ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_surrogate> "1 2 3 4")
map_script_test(test_surrogate_hash_grid2x1_np234 sh ${CMAKE_SOURCE_DIR}/tests/surrogate/check_hash.sh
                ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:test_surrogate> "2 3 4" -map_surrogate_grid 2,1)
set_tests_properties(test_surrogate_hash_np1234 test_surrogate_hash_grid2x1_np234 PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
