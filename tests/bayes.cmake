# Bayesian MAP sampling step (src/map/sample_bayes.c): hyperspherical round trip, bin layout for large T,
# determinism and rank independence, box, concentration on high residuals, empty bins, options.
add_executable(test_bayes ${CMAKE_SOURCE_DIR}/tests/bayes/test_bayes.c)
target_link_libraries(test_bayes PRIVATE map_sample)
foreach(np 1 2)
  map_mpi_test(bayes ${np} $<TARGET_FILE:test_bayes>)
  set_tests_properties(bayes_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
