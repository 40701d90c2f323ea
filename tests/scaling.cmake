# Scaling study tooling (bench/scaling, bench/store/gen_hf.py): the synthetic sharded HF generator
# writes the same bytes with 1 or several writer processes, and mapmerge imports its output.
map_script_test(scaling_gen_hf /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/scaling/gen_hf_test.py
                ${CMAKE_BINARY_DIR}/tests/scaling/gen_hf ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mapmerge>)
set_tests_properties(scaling_gen_hf PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
