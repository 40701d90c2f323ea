# `mapmerge run` end to end (tests/run/test_run.py): same bits at -n 1..4, SIGUSR1 interrupt and
# resume, kill -9 of a rank and resume, bad input, a full disk. Uses the small zoo (fixture zoo_small).
foreach(case ranks_analytic ranks_zoo bayes_replay bayes_per_task refine refine_pick nested nested_chain export_pick signal_resume_2 signal_resume_4 kill_resume_2 kill_resume_4 bad_input disk_full)
  map_script_test(run_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/run/test_run.py ${case})
  set_tests_properties(run_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL" SKIP_RETURN_CODE 77 RESOURCE_LOCK run_store)
  if(NOT case STREQUAL "ranks_analytic")
    set_tests_properties(run_${case} PROPERTIES FIXTURES_REQUIRED zoo_small)
  endif()
endforeach()
# `mapmerge run -help` without a store or a YAML lists every option, the fit's and the search's included
map_script_test(run_cli_help ${MPIEXEC_EXECUTABLE} -n 1 $<TARGET_FILE:mapmerge> run -help)
set_tests_properties(run_cli_help PROPERTIES PASS_REGULAR_EXPRESSION "-map_pareto_chain" FAIL_REGULAR_EXPRESSION "mapmerge: error")
# issue 12: hostile input of each class ends in a clear error with nothing lost (tests/run/test_robust.py)
foreach(case journal lock store outputs)
  map_script_test(robust_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/run/test_robust.py ${case})
  set_tests_properties(robust_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL" RESOURCE_LOCK run_store FIXTURES_REQUIRED zoo_small)
endforeach()
# hostile inputs (issue 12 B/C): crafted results.h5, FIFOs and devices as inputs, option ranges, messages
foreach(case results fifo options messages)
  map_script_test(run_hostile_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/run/test_hostile_inputs.py ${case})
  set_tests_properties(run_hostile_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
endforeach()
# -map_budget N (issue 18): exactly N evaluations, reported; invalid budgets refused up front
foreach(case spend invalid)
  map_script_test(run_budget_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/run/test_budget.py ${case})
  set_tests_properties(run_budget_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL" RESOURCE_LOCK run_store FIXTURES_REQUIRED zoo_small)
endforeach()
# -map_metric and failed points (issue 16 item 3, tests/run/test_metric.py): a NaN-answering worker,
# a percentage scorer, a loss-direction mlp run, a perplexity command scorer
foreach(case nan percent loss_mlp perplexity)
  map_script_test(run_metric_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/run/test_metric.py ${case})
  set_tests_properties(run_metric_${case} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL" RESOURCE_LOCK run_store FIXTURES_REQUIRED zoo_small)
endforeach()
