# Store read benchmark (a target, not a test: it needs a multi-GB store and a quiet machine).
# Run: bench/store/run.sh <build dir>; see bench/store/RESULTS.md, "Store I/O and import".
add_executable(bench_store_read ${CMAKE_SOURCE_DIR}/bench/store/bench_read.c)
target_link_libraries(bench_store_read PRIVATE map_merge)
