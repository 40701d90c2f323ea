/* mapmerge - the driver: dispatches a subcommand to libmapmerge. All work is in the library. */
#include <mapmerge/mapmerge.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char help[] = "mapmerge <command> [options]: model merging with amortized Pareto fronts (MAP).\n"
                     "Commands:\n"
                     "  zoo     build the embedded default model zoo from Fashion-MNIST\n"
                     "  import  safetensors checkpoints -> parallel HDF5 store (-map_pretrained, -map_tasks, -map_task_models, -map_store)\n"
                     "  info    describe a store (-map_store) \n"
                     "  export  write a merged model as safetensors (-map_store, -map_coeff, -map_output)\n"
                     "  eval    evaluate coefficient vectors (-map_coeffs FILE.csv, -map_output)\n"
                     "  run     sample, evaluate, fit, search, re-evaluate (-map_method map|bayesian|nested)\n"
                     "Options come from the command line, -options_file and -options_file_yaml; `mapmerge <command> -help`\n"
                     "lists them. Unknown options are an error.\n";

int MapYAMLCheckDuplicates(const char *path, char *msg, size_t len); /* main_yaml.c */

typedef struct {
  const char *name;
  PetscErrorCode (*fn)(MPI_Comm);
} MapCommand;

static const MapCommand commands[] = {
  {"zoo", MapCommandZoo},
  {"import", MapCommandImport},
  {"info", MapCommandInfo},
  {"export", MapCommandExport},
  {"eval", MapCommandEval},
  {"run", MapCommandRun},
};

/* Errors for users, not for PETSc developers: the message once, then where it came from — no banner
   of configure options. Each rank prints its own (a rank-local error names its rank). */
static PetscErrorCode MapErrorHandler(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n,
                                      PetscErrorType p, const char *mess, void *ctx)
{
  PetscMPIInt rank = 0, crank = 0, csize = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (comm != MPI_COMM_NULL) {
    MPI_Comm_rank(comm, &crank);
    MPI_Comm_size(comm, &csize);
  }
  static PetscBool said = PETSC_FALSE;
  if (n == PETSC_ERR_SIG) { /* an interrupted run (see Dispatch's caller): a note from rank 0, not an error trace */
    if (p == PETSC_ERROR_INITIAL && !rank) fprintf(stderr, "mapmerge run: %s\n", mess ? mess : "interrupted by a signal");
    return n;
  }
  if (p == PETSC_ERROR_INITIAL) said = (crank == 0) ? PETSC_TRUE : PETSC_FALSE; /* a collective error: its rank 0 says it once */
  if (!said) return n;
  if (p == PETSC_ERROR_INITIAL && mess && (!strncmp(mess, "Input string ", 13) || !strncmp(mess, "Unknown logical value: ", 23))) {
    /* PETSc's conversion errors give the value, not the option (a YAML "reevaluate: [1, 2]" or a
       typo): find the option that holds that value */
    const char *v   = mess[0] == 'I' ? mess + 13 : mess + 23;
    const char *end = mess[0] == 'I' ? strstr(v, " has no") : NULL;
    size_t      vl  = end ? (size_t)(end - v) : strlen(v);
    char       *all = NULL;
    if (!PetscOptionsGetAll(NULL, &all) && all) {
      for (char *q = strstr(all, " -"), *o = all; o; o = q, q = q ? strstr(q + 1, " -") : NULL) {
        char *name = o[0] == '-' ? o : o + 1, *sp = strchr(name, ' ');
        if (sp && !strncmp(sp + 1, v, vl) && (sp[1 + vl] == ' ' || !sp[1 + vl])) {
          fprintf(stderr, "mapmerge: error [rank %d]: option %.*s: %s\n", rank, (int)(sp - name), name, mess);
          mess = NULL;
          break;
        }
        if (!q) break;
      }
      PetscFree(all);
    }
    if (!mess) return n;
  }
  if (p == PETSC_ERROR_INITIAL && (n == PETSC_ERR_MEM || (func && !strcmp(func, "PetscMallocAlign"))) && !(mess && strstr(mess, "out of memory"))) {
    /* PETSc's allocator names only the function: say what the node and the process limit allow */
    double        avail = 0, kb;
    char          buf[256];
    struct rlimit rl;
    FILE         *f = fopen("/proc/meminfo", "r");
    while (f && fgets(buf, sizeof(buf), f))
      if (sscanf(buf, "MemAvailable: %lf kB", &kb) == 1) avail = kb * 1024;
    if (f) fclose(f);
    fprintf(stderr, "mapmerge: error [rank %d]: out of memory: an allocation failed (where: the lines below); %.3g GiB available on this node", rank,
            avail / (1 << 30));
    if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY) fprintf(stderr, ", address space limited to %.3g GiB (ulimit -v)", (double)rl.rlim_cur / (1 << 30));
    fprintf(stderr, ". Use more ranks or nodes, or less data per rank\n");
    return n;
  }
  if (p == PETSC_ERROR_INITIAL) {
    const char *text = NULL;
    PetscErrorMessage(n, &text, NULL);
    if (mess && mess[0]) fprintf(stderr, "mapmerge: error [rank %d]: %s\n", rank, mess);
    else fprintf(stderr, "mapmerge: error [rank %d]: %s\n", rank, text ? text : "unknown error");
  }
  fprintf(stderr, "    at %s() %s:%d\n", func, file, line);
  return n;
}

static PetscErrorCode Dispatch(const char *cmd, int *exit_status)
{
  PetscFunctionBeginUser;
  *exit_status = 0;
  PetscCall(MapInitializePackage());
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    if (!strcmp(cmd, commands[i].name)) {
      PetscCall(commands[i].fn(PETSC_COMM_WORLD));
      *exit_status = MapExitStatus; /* e.g. MAP_EXIT_CHECKPOINTED: interrupted after journaling, not an error */
      PetscFunctionReturn(0);
    }
  }
  SETERRQ(PETSC_COMM_WORLD, PETSC_ERR_ARG_UNKNOWN_TYPE, "unknown command \"%s\"; one of: zoo import info export eval run", cmd);
}

int main(int argc, char **argv)
{
  const char    *cmd         = NULL;
  int            exit_status = 0;
  PetscErrorCode ierr;

  /* the command is argv[1]; take it out so PETSc sees only options */
  if (argc > 1 && argv[1][0] != '-') {
    cmd = argv[1];
    for (int i = 1; i < argc - 1; i++) argv[i] = argv[i + 1];
    argc--;
  }
  /* options files are read inside PetscInitialize, by every rank: a FIFO there would block them all
     before any error handling exists, so look first */
  for (int i = 1; i + 1 < argc; i++) {
    struct stat sb;
    if (strcmp(argv[i], "-options_file") && strcmp(argv[i], "-options_file_yaml")) continue;
    if (!stat(argv[i + 1], &sb) && !S_ISREG(sb.st_mode)) {
      fprintf(stderr, "mapmerge: error: %s %s is %s; mapmerge reads only regular files\n", argv[i], argv[i + 1],
              S_ISFIFO(sb.st_mode) ? "a FIFO (named pipe)" : S_ISDIR(sb.st_mode) ? "a directory"
                                                                                 : "not a regular file");
      return 1;
    }
    char msg[1024];
    if (!strcmp(argv[i], "-options_file_yaml") && MapYAMLCheckDuplicates(argv[i + 1], msg, sizeof(msg))) {
      fprintf(stderr, "mapmerge: error: -options_file_yaml %s\n", msg);
      return 1;
    }
  }
  /* before MPI starts: a job script's SIGUSR1 that comes early must ask for a checkpoint, not end
     the process by the default action (its exit status 138 marks the job FAILED) */
  if (cmd && !strcmp(cmd, "run") && MapRunCatchSignals()) {
    perror("mapmerge: sigaction");
    return 1;
  }
  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(PetscPushErrorHandler(MapErrorHandler, NULL));
  if (!cmd) {
    PetscBool hashelp;
    PetscCall(PetscOptionsHasHelp(NULL, &hashelp));
    if (!hashelp) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s", help));
    PetscCall(PetscOptionsClear(NULL)); /* nothing to complain about */
    ierr = PetscFinalize();
    return hashelp ? ierr : 2;
  }
  ierr = Dispatch(cmd, &exit_status);
  if (ierr == PETSC_ERR_SIG && !strcmp(cmd, "run")) {
    /* every rank stopped together (the evaluator agreed on it) with each finished evaluation
       journaled: a checkpoint, so the job is requeued, not failed */
    MapTempCleanup();
    ierr = PetscFinalize();
    return ierr ? 1 : MAP_EXIT_CHECKPOINTED;
  }
  if (ierr) {
    /* An error on any rank ends the whole job: the others may be waiting in a collective.
       Temporary outputs of this rank go first, so nothing half-written is left behind. */
    MapTempCleanup();
    fflush(stdout);
    fflush(stderr);
    PetscMPIInt rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank) usleep(300000); /* let rank 0 print a collective error before the abort kills it */
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  ierr = PetscFinalize();
  return ierr ? 1 : exit_status;
}
