# safetensors module tests: round trips at 1 and 2 ranks, files written by numpy read by us and
# ours read by numpy, every kind of corrupt file rejected with a clear message, fuzz regressions.
set(ST_DIR ${CMAKE_SOURCE_DIR}/tests/safetensors)
add_executable(test_safetensors ${ST_DIR}/test_safetensors.c)
target_link_libraries(test_safetensors PRIVATE map_safetensors)
add_executable(st_check ${ST_DIR}/st_check.c)
target_link_libraries(st_check PRIVATE map_safetensors)

foreach(np 1 2)
  set(d ${CMAKE_BINARY_DIR}/st_test_np${np})
  file(MAKE_DIRECTORY ${d})
  map_mpi_test(safetensors_roundtrip ${np} $<TARGET_FILE:test_safetensors> ${d})
  set_tests_properties(safetensors_roundtrip_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()

# numpy writes (hand-built headers), we read; we write (serial and parallel at np 2), numpy reads
map_script_test(safetensors_numpy_to_ours /usr/bin/python3 ${ST_DIR}/check_numpy.py
                $<TARGET_FILE:st_check> ${MPIEXEC_EXECUTABLE} ${CMAKE_BINARY_DIR}/st_numpy)
map_script_test(safetensors_ours_to_numpy /usr/bin/python3 ${ST_DIR}/check_ours.py
                $<TARGET_FILE:test_safetensors> ${MPIEXEC_EXECUTABLE} ${CMAKE_BINARY_DIR}/st_ours)

# corrupt files: make_bad.py writes them (fixture), each must fail at np 2 with its message
map_script_test(safetensors_make_bad /usr/bin/python3 ${ST_DIR}/make_bad.py ${CMAKE_BINARY_DIR}/st_bad)
set_tests_properties(safetensors_make_bad PROPERTIES FIXTURES_SETUP st_bad)
set(ST_BAD_CASES
  "truncated_4bytes|file truncated: 4 bytes"
  "empty_file|file truncated: 0 bytes"
  "header_past_eof|header length 1000 runs past the end"
  "header_too_large|header length 200000000 exceeds the limit"
  "not_json|header is not valid JSON"
  "not_brace|does not start with '\\{'"
  "json_array|does not start with '\\{'"
  "duplicate_name|duplicate object key"
  "overlap|tensor \"b\": data_offsets \\[8, 24\\] overlap the previous tensor"
  "gap|tensor \"b\": data_offsets \\[20, 32\\] leave a hole"
  "trailing_bytes|trailing bytes after the last tensor"
  "data_truncated|tensor \"b\": data_offsets \\[16, 32\\] end past the data section of 24 bytes"
  "bad_dtype|tensor \"w\": unsupported dtype \"F128\""
  "shape_mismatch|tensor \"w\": shape holds 6 elements of F32 = 24 bytes, but data_offsets \\[0, 16\\] span 16 bytes"
  "negative_shape|tensor \"w\": shape must be >= 0, got -2"
  "float_offset|tensor \"w\": data_offsets must hold integers, got a JSON real"
  "missing_dtype|tensor \"w\": \"dtype\" is missing"
  "end_before_begin|tensor \"w\": data_offsets \\[16, 8\\] end before begin"
  "offsets_three|tensor \"w\": \"data_offsets\" must be an array \\[begin, end\\]"
  "metadata_not_string|\"__metadata__\": value of key \"epoch\" is not a string"
  "numel_overflow|tensor \"w\": the number of elements overflows 64 bits"
  "huge_offset|tensor \"w\": data_offsets \\[0, 18446744073709551615\\]|must hold integers|too big"
  "bad_utf8|header is not valid JSON"
  "nul_in_name|header is not valid JSON"
  "deep_nesting|header is not valid JSON"
  "index_missing_shard|cannot open safetensors file .*shard-missing.safetensors"
  "index_wrong_map|tensor \"b\" is in shard .* but the index maps it to"
  "index_unlisted|tensor \"c\" is in shard .* but the index does not list it"
  "index_escape|resolves to .*escape.safetensors, outside the checkpoint folder"
  "folder_empty|holds neither model.safetensors nor model.safetensors.index.json")
foreach(c ${ST_BAD_CASES})
  string(FIND "${c}" "|" bar)
  string(SUBSTRING "${c}" 0 ${bar} name)
  math(EXPR bar "${bar} + 1")
  string(SUBSTRING "${c}" ${bar} -1 regex)
  map_script_test(safetensors_bad_${name} /usr/bin/python3 ${ST_DIR}/expect_fail.py ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:st_check>
                  ${CMAKE_BINARY_DIR}/st_bad/${name} "${regex}")
  set_tests_properties(safetensors_bad_${name} PROPERTIES FIXTURES_REQUIRED st_bad)
endforeach()
map_script_test(safetensors_good_control /usr/bin/python3 ${ST_DIR}/expect_fail.py --ok ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:st_check>
                ${CMAKE_BINARY_DIR}/st_bad/good "OK, 3 tensors")
set_tests_properties(safetensors_good_control PROPERTIES FIXTURES_REQUIRED st_bad)

# fuzz regressions: every input in tests/fuzz/{corpus,regressions} through the harness without libFuzzer
add_executable(fuzz_safetensors_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_safetensors.c ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
target_link_libraries(fuzz_safetensors_replay PRIVATE map_safetensors)
add_test(NAME safetensors_fuzz_replay COMMAND fuzz_safetensors_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus
         ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions)
set_tests_properties(safetensors_fuzz_replay PROPERTIES ENVIRONMENT "${MAP_TEST_ENV}" TIMEOUT 120 PASS_REGULAR_EXPRESSION "replayed [1-9][0-9]* inputs")
