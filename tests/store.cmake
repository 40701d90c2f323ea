# Store module: `mapmerge import/info/export` on a hand-written safetensors model family, checked
# against numpy (tests/store/store_test.py); bad inputs must fail with a clear message and leave
# no output behind.
set(MAP_STORE_TEST ${CMAKE_SOURCE_DIR}/tests/store/store_test.py)
set(MAP_STORE_WORK ${CMAKE_BINARY_DIR}/tests/store)
# import at -n 1/2/4 (h5py checks), info, export at -n 1/2/4 (bytes identical, numpy reference),
# task subset + private head + bf16, sharded export
map_script_test(store_roundtrip /usr/bin/python3 ${MAP_STORE_TEST} roundtrip ${MAP_STORE_WORK}/roundtrip ${MPIEXEC_EXECUTABLE})
# P = 85 < 2*64: at -n 4 two ranks own no parameters and still take part in the collective I/O
map_script_test(store_tiny /usr/bin/python3 ${MAP_STORE_TEST} tiny ${MAP_STORE_WORK}/tiny ${MPIEXEC_EXECUTABLE})
map_script_test(store_help /usr/bin/python3 ${MAP_STORE_TEST} help ${MAP_STORE_WORK}/help ${MPIEXEC_EXECUTABLE})
foreach(case shape_mismatch missing_tensor nan inf tv_overflow int_dtype extra_tensor option_typo count_mismatch dir_missing dir_readonly
             corrupt_text_info corrupt_truncated_info corrupt_h5_info corrupt_truncated_export corrupt_h5_export coeff_count unknown_task
             bf16_overflow bf16_unknown_dtype bf16_mark_unknown_info bf16_mark_unknown_export bf16_mark_missing_export bf16_root_info
             bf16_mark_swapped_info f16_overflow f16_mark_unknown_info f16_mark_missing_export f16_mark_swapped_info f16_root_export)
  map_script_test(store_bad_${case} /usr/bin/python3 ${MAP_STORE_TEST} bad ${case} ${MAP_STORE_WORK}/bad_${case} ${MPIEXEC_EXECUTABLE})
endforeach()
# BF16 and F16 storage (import -map_store_dtype bf16|f16) on the small zoo: the stored bits against
# numpy/torch rounding, export against numpy, eval and nested MAP with the same bits at several rank counts
foreach(dt bf16 f16)
  foreach(case import export eval nested)
    map_script_test(store_${dt}_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/store/store16_zoo_test.py ${case} ${dt})
    set_tests_properties(store_${dt}_${case} PROPERTIES FIXTURES_REQUIRED zoo_small FAIL_REGULAR_EXPRESSION "FAIL")
  endforeach()
endforeach()
# `info` prints every task name whole (PETSc 3.18's PetscStrlcat cut "bible" to "bi"; MapStrlcat)
map_script_test(store_info_task_names /bin/sh -c
  "${MPIEXEC_EXECUTABLE} -n 1 $<TARGET_FILE:mapmerge> import -options_file_yaml zoo-small/zoo.yaml -map_tasks permute -map_task_models zoo-small/permute.safetensors -map_store store-info-names.h5 >/dev/null && ${MPIEXEC_EXECUTABLE} -n 2 $<TARGET_FILE:mapmerge> info -map_store store-info-names.h5")
set_tests_properties(store_info_task_names PROPERTIES FIXTURES_REQUIRED zoo_small
                     PASS_REGULAR_EXPRESSION "tasks T = 1: permute\n")
# Checkpoints as PyTorch/HF write them (issue 14): not-safetensors inputs named, integer/bool buffers kept,
# heads reported, HF folder -> store -> model folder (byte-equal merge, copied files, model card)
foreach(case sniff buffers heads folder torchload)
  map_script_test(store_hf_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/store/hf_test.py ${case} ${MAP_STORE_WORK}/hf_${case} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(store_hf_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
endforeach()
# source digests (sha256 of 64 KiB ranges' sha256, hashed while importing) and the store checksum, at
# -n 1..4, against scripts/map_digest.py and numpy (tests/store/digest_test.py)
map_script_test(store_digest /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/store/digest_test.py ${MAP_STORE_WORK}/digest
                ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mapmerge>)
set_tests_properties(store_digest PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
# A model-folder export killed (strace -e inject=...:signal=KILL) before each of its renames, links,
# unlinks, mkdirs and rmdirs leaves exactly the old folder or the new one (issue 12 A3, issue 14)
foreach(case sharded unsharded)
  map_script_test(store_hf_crash_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/store/hf_crash_test.py ${case} ${MAP_STORE_WORK}/hf_crash_${case} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(store_hf_crash_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
endforeach()
# BF16 storage at the format's edges (zeros, subnormals, ties, the largest finite BF16, Inf by rounding),
# F32 and BF16 checkpoints, -n 1..3: the vectorised rounding equals numpy's (tests/store/bf16_edges_test.py)
map_script_test(store_bf16_edges /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/store/bf16_edges_test.py ${MAP_STORE_WORK}/bf16_edges
                ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mapmerge>)
set_tests_properties(store_bf16_edges PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
