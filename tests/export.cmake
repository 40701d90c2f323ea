# Streaming export (issue 17): read-merge-write in blocks of -map_io_block_mb is byte-identical to the
# whole-shard export at -n 1..4 (F32/BF16 stores, f32/bf16 output, private head, sharded folder), and an
# export fits under a `ulimit -v` the whole-shard one exceeds (tests/export/export_stream_test.py).
foreach(case identical memlimit)
  map_script_test(export_stream_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/export/export_stream_test.py ${case}
                  ${CMAKE_BINARY_DIR}/tests/export/${case} ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mapmerge>)
  set_tests_properties(export_stream_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
endforeach()
