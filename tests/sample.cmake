# sample module: determinism, LHS strata, design rank (full for T = 2..12, deficient designs
# rejected with the rank found and needed), CSV parsing and every CSV error, at 1, 2 and 4 ranks.
add_executable(test_sample ${CMAKE_SOURCE_DIR}/tests/sample/test_sample.c)
target_link_libraries(test_sample PRIVATE map_sample)
foreach(np 1 2 4)
  set(d ${CMAKE_BINARY_DIR}/sample_test_np${np})
  file(MAKE_DIRECTORY ${d})
  map_mpi_test(sample ${np} $<TARGET_FILE:test_sample> ${d})
  set_tests_properties(sample_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
