# LM zoo tests (tests/lm/): build the language-model zoo (scripts/lm_zoo.py, cached by its stamp) into
# ${CMAKE_BINARY_DIR}/lm-zoo as the fixture `lm_zoo` other LM tests require, then check the independent
# float64 reference (tests/lm/lm_ref.py) against the zoo's torch modules and the zoo's files.
map_script_test(lm_zoo /usr/bin/python3 ${CMAKE_SOURCE_DIR}/scripts/lm_zoo.py ${CMAKE_BINARY_DIR}/lm-zoo)
set_tests_properties(lm_zoo PROPERTIES FIXTURES_SETUP lm_zoo)
