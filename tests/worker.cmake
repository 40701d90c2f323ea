# worker evaluator tests (tests/worker/): -map_eval_type worker with examples/torch_worker.py and a
# numpy worker that injects failures, real MPI runs on the small zoo (fixture zoo_small).
foreach(case torch_vs_mlp failures kill_run groups signal)
  map_script_test(worker_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/worker/test_worker.py ${case})
  set_tests_properties(worker_${case} PROPERTIES FIXTURES_REQUIRED zoo_small FAIL_REGULAR_EXPRESSION "FAIL" RESOURCE_LOCK worker_store)
endforeach()
