# Batch scripts (jobs/) on a real single-node SLURM brought up under a temporary folder
# (tests/slurm/up.sh): needs slurm-wlm and munge; skipped (exit 77) when they are missing.
# RUN_SERIAL: the test's jobs use both cores, and its SLURM daemons must not compete with
# other tests for them.
map_script_test(slurm_jobs ${CMAKE_SOURCE_DIR}/tests/slurm/test_jobs.sh)
set_tests_properties(slurm_jobs PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE
                     FAIL_REGULAR_EXPRESSION "FAIL:" LABELS slurm)
# jobs/local.sh (mpiexec, no SLURM): signals mid-run, automatic resume, stop and continue.
map_script_test(jobs_local ${CMAKE_SOURCE_DIR}/tests/slurm/test_local.sh)
set_tests_properties(jobs_local PROPERTIES TIMEOUT 180 FAIL_REGULAR_EXPRESSION "FAIL:")
