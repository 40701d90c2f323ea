# merge module: kernels (fast == reference, bitwise), MapModel from a real store at several rank
# counts (same bits, equal to an independent numpy computation), and the bandwidth benchmark.

add_executable(test_merge ${CMAKE_SOURCE_DIR}/tests/merge/test_merge.c)
target_link_libraries(test_merge PRIVATE map_merge)
map_mpi_test(test_merge 1 $<TARGET_FILE:test_merge>)

# test_merge_model: imports safetensors into a store (MapStoreImport), then merges from it.
add_executable(test_merge_model ${CMAKE_SOURCE_DIR}/tests/merge/test_merge_model.c)
target_link_libraries(test_merge_model PRIVATE map_merge)
map_script_test(merge_model_ranks /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/merge/test_merge_model.py
                $<TARGET_FILE:test_merge_model> ${MPIEXEC_EXECUTABLE} ${CMAKE_BINARY_DIR}/tests/merge_model)

# Benchmark (built with the tree, not a test: it needs ~6 GB and a quiet machine).
# Run: bench/merge/run.sh <build dir>; see bench/merge/RESULTS.md.
add_executable(bench_merge ${CMAKE_SOURCE_DIR}/bench/merge/bench_merge.c)
target_link_libraries(bench_merge PRIVATE map_merge)
