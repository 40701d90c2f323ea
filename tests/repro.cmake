# Reproducibility (docs/reproducibility.md, issue 11): the property test over random MLP shapes at
# -n 1..5 (prints its seed; MAP_REPRO_SEED replays it), and the bits that must not depend on the
# CPU's BLAS kernels, glibc's libm variant or the launcher's binding.
map_script_test(repro_property /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/repro/test_property.py)
map_script_test(repro_machine /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/repro/test_machine.py)
set_tests_properties(repro_property repro_machine PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
