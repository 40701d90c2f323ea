# Store read benchmark (a target, not a test: it needs a multi-GB store and a quiet machine).
# Run: bench/store/run.sh <build dir>; see bench/store/RESULTS.md, "Store I/O and import".
add_executable(bench_store_read ${CMAKE_SOURCE_DIR}/bench/store/bench_read.c)
target_link_libraries(bench_store_read PRIVATE map_merge)
# MapChecksum64's throughput per core, AVX-512 against the generic loop (bench/store/RESULTS.md, "One-pass import")
add_executable(bench_checksum ${CMAKE_SOURCE_DIR}/bench/store/bench_checksum.c)
target_link_libraries(bench_checksum PRIVATE map_core)
