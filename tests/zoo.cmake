# zoo module tests (tests/zoo/): build the small zoo (input/small.yaml) at 1 and 2 ranks with the
# real command code, check the files are the same bytes, that every fine-tuned model beats the
# pretrained one on its task (recomputed by numpy from the files), that the eval sets are numpy's
# own transforms of the raw Fashion-MNIST images, and that bad input gives clear errors.
add_executable(zoo_build ${CMAKE_SOURCE_DIR}/tests/zoo/zoo_build.c)
target_link_libraries(zoo_build PRIVATE map_run)  # MapCommandZoo, the real command code
map_script_test(zoo_small /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/zoo/test_zoo.py
                $<TARGET_FILE:zoo_build> ${MPIEXEC_EXECUTABLE} ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
# other tests may use the small zoo in ${CMAKE_BINARY_DIR}/zoo-small: FIXTURES_REQUIRED zoo_small
set_tests_properties(zoo_small PROPERTIES FIXTURES_SETUP zoo_small FAIL_REGULAR_EXPRESSION "FAIL")
# the command is registered in the real driver and documents its options
map_script_test(zoo_cli_help ${MPIEXEC_EXECUTABLE} -n 1 $<TARGET_FILE:mapmerge> zoo -help)
set_tests_properties(zoo_cli_help PROPERTIES PASS_REGULAR_EXPRESSION "-map_zoo_finetune_epochs")
