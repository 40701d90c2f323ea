# pareto module: the search on the analytic problems with exact objectives (no surrogate) — every
# found point checked against the known Pareto set, extreme points, IGD/HV, Chebyshev vs weighted
# sum on a non-convex front, bitwise the same front at 1, 2 and 4 ranks; front-quality measures;
# postprocess/quality.py on a synthetic front.
# The tests link the module library (map_pareto needs only map_core); test_pareto also takes the
# analytic evaluator from map_eval.
add_executable(test_pareto ${CMAKE_SOURCE_DIR}/tests/pareto/test_pareto.c)
target_link_libraries(test_pareto PRIVATE map_pareto map_eval)
add_executable(test_front ${CMAKE_SOURCE_DIR}/tests/pareto/test_front.c)
target_link_libraries(test_front PRIVATE map_pareto)

map_mpi_test(pareto_front 1 $<TARGET_FILE:test_front>)
set_tests_properties(pareto_front_np1 PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
foreach(np 1 2 4)
  # the default (Chebyshev) on the convex problem at T = 2 and 3, the non-convex one at T = 2;
  # at np > 1 each also compares its front bitwise with a one-rank search
  map_mpi_test(pareto_quadratic2 ${np} $<TARGET_FILE:test_pareto> -problem quadratic -T 2)
  map_mpi_test(pareto_nonconvex2 ${np} $<TARGET_FILE:test_pareto> -problem nonconvex -T 2)
  set_tests_properties(pareto_quadratic2_np${np} pareto_nonconvex2_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
foreach(np 1 2)
  map_mpi_test(pareto_quadratic3 ${np} $<TARGET_FILE:test_pareto> -problem quadratic -T 3)
  map_mpi_test(pareto_nonconvex3 ${np} $<TARGET_FILE:test_pareto> -problem nonconvex -T 3)
  # weighted sum: the whole convex front, but only the corners of the non-convex one
  map_mpi_test(pareto_quadratic2_ws ${np} $<TARGET_FILE:test_pareto> -problem quadratic -T 2 -scal weighted_sum)
  map_mpi_test(pareto_nonconvex2_ws ${np} $<TARGET_FILE:test_pareto> -problem nonconvex -T 2 -scal weighted_sum)
  set_tests_properties(pareto_quadratic3_np${np} pareto_nonconvex3_np${np} pareto_quadratic2_ws_np${np}
                       pareto_nonconvex2_ws_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
# the epigraph form (-map_pareto_solver epigraph: TAOALMM) passes the same checks
map_mpi_test(pareto_quadratic3_epigraph 1 $<TARGET_FILE:test_pareto> -problem quadratic -T 3 -solver epigraph)
set_tests_properties(pareto_quadratic3_epigraph_np1 PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
foreach(np 1 2)
  map_mpi_test(pareto_nonconvex2_epigraph ${np} $<TARGET_FILE:test_pareto> -problem nonconvex -T 2 -solver epigraph)
  set_tests_properties(pareto_nonconvex2_epigraph_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
# TAO's own quasi-Newton method in place of the projected Newton (-map_pareto_tao_type blmvm)
map_mpi_test(pareto_nonconvex2_blmvm 2 $<TARGET_FILE:test_pareto> -problem nonconvex -T 2 -map_pareto_tao_type blmvm)
set_tests_properties(pareto_nonconvex2_blmvm_np2 PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
map_script_test(pareto_quality /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/pareto/test_quality.py
                ${CMAKE_SOURCE_DIR}/postprocess/quality.py ${CMAKE_BINARY_DIR}/pareto_quality)
set_tests_properties(pareto_quality PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
# sigmoid-quadratic surrogates at T = 8 (what `mapmerge run` searches; seeded, conflicting tasks):
# front sanity, the same bits on every rank and as a one-rank search at 1, 2 and 3 ranks (3 ranks put
# the preference blocks and the anchor solves on other ranks than 2 do). Also the benchmark of the
# search: test_pareto_surrogate -params FILE ("T F" + a run's surrogate/accuracy/params) -reps n -dump F
add_executable(test_pareto_surrogate ${CMAKE_SOURCE_DIR}/tests/pareto/test_surrogate.c)
target_link_libraries(test_pareto_surrogate PRIVATE map_pareto)
foreach(np 1 2 3)
  map_mpi_test(pareto_surrogate8 ${np} $<TARGET_FILE:test_pareto_surrogate> -T 8)
  set_tests_properties(pareto_surrogate8_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
# the surrogates of the embedded default's 8-task run (runs/default, seed 0): the pick must match the
# epigraph form's Chebyshev value (a regression found there); same bits at 1 and 2 ranks
foreach(np 1 2)
  map_mpi_test(pareto_default8 ${np} $<TARGET_FILE:test_pareto_surrogate> -params ${CMAKE_SOURCE_DIR}/tests/pareto/default8_params.txt)
  set_tests_properties(pareto_default8_np${np} PROPERTIES PASS_REGULAR_EXPRESSION "ALL OK: 0 failures")
endforeach()
