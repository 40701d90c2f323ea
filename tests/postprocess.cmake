# postprocess/ (tests/postprocess/test_postprocess.py) on real runs of the small zoo: plot_front.py's
# drawn coordinates against front.csv and results.h5 (T = 2, 3, 4, nested, the quality curve),
# report.html rendered by headless Chromium (not blank, task names and the pick in the page, names
# escaped), quality.py on front.csv without --front-columns, a -map_metric loss:lower:0, run (metric).
foreach(case plot report quality metric)
  map_script_test(postprocess_${case} /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/postprocess/test_postprocess.py ${case})
  set_tests_properties(postprocess_${case} PROPERTIES FIXTURES_REQUIRED zoo_small FAIL_REGULAR_EXPRESSION "FAIL"
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK postprocess_store TIMEOUT 300)
endforeach()
