# LM zoo tests (tests/lm/): build the language-model zoo (scripts/lm_zoo.py, cached by its stamp) into
# ${CMAKE_BINARY_DIR}/lm-zoo as the fixture `lm_zoo` other LM tests require, then check the independent
# float64 reference (tests/lm/lm_ref.py) against the zoo's torch modules and the zoo's files.
map_script_test(lm_zoo /usr/bin/python3 ${CMAKE_SOURCE_DIR}/scripts/lm_zoo.py ${CMAKE_BINARY_DIR}/lm-zoo)
# about 1.5 min of CPU on one thread; the timeout leaves room for a loaded machine
set_tests_properties(lm_zoo PROPERTIES FIXTURES_SETUP lm_zoo TIMEOUT 1500)
map_script_test(lm_ref_selfcheck /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/lm/test_lm_ref.py ${CMAKE_BINARY_DIR}/lm-zoo ${CMAKE_SOURCE_DIR})
set_tests_properties(lm_ref_selfcheck PROPERTIES FIXTURES_REQUIRED lm_zoo FAIL_REGULAR_EXPRESSION "FAIL")

# The lm evaluator on the zoo (tests/lm/test_lm.py): against the float64 reference, the same bits at
# -n 1..4 and 8, `run` end to end with the exported pick re-scored, and bad inputs.
foreach(case ref ranks run errors worker)
  map_script_test(lm_eval_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/lm/test_lm.py ${case})
  set_tests_properties(lm_eval_${case} PROPERTIES FIXTURES_REQUIRED lm_zoo FAIL_REGULAR_EXPRESSION "FAIL")
endforeach()
