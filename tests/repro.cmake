# Reproducibility (docs/reproducibility.md, issue 11): the property test over random MLP shapes at
# -n 1..5 (prints its seed; MAP_REPRO_SEED replays it), and the bits that must not depend on the
# CPU's BLAS kernels, glibc's libm variant or the launcher's binding.
map_script_test(repro_property /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/repro/test_property.py)
map_script_test(repro_machine /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/repro/test_machine.py)
set_tests_properties(repro_property repro_machine PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL")
# the fixed-order kernel against the plain loop, bit for bit, and fixed exp/log against libm
add_executable(repro_test_fixed ${CMAKE_SOURCE_DIR}/tests/repro/test_fixed.c)
target_link_libraries(repro_test_fixed PRIVATE map_core)
map_mpi_test(repro_fixed 1 $<TARGET_FILE:repro_test_fixed>)
# the same run under srun in a SLURM job without CPU binding, against mpiexec (local SLURM, like slurm_jobs)
map_script_test(repro_srun ${CMAKE_SOURCE_DIR}/tests/repro/test_srun.sh)
set_tests_properties(repro_srun PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE FAIL_REGULAR_EXPRESSION "FAIL" LABELS slurm)
