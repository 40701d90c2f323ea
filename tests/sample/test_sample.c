/* Sampler tests: determinism, box, reference structure, LHS stratification, design rank (full for
 * T = 2..12, deficient designs rejected with the rank in the message), CSV parsing and its errors.
 * Usage: test_sample <scratch dir>. Prints "FAIL ..." on any failed check, "ALL OK" at the end. */
#include <mapmerge/sample.h>
#include <math.h>

#include "../maptest.h"

static PetscErrorCode WriteFile(const char *path, const char *text)
{
  FILE *f;
  PetscFunctionBegin;
  f = fopen(path, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
  PetscFunctionReturn(0);
}

static PetscErrorCode TestDeterminismAndBox(void)
{
  const char *names[] = {"a", "b", "c", "d"};
  double     *C1, *C2, *C3;
  PetscInt    n1, n2, n3;

  PetscFunctionBegin;
  for (int type = 0; type < 2; type++) {
    PetscInt n = type == 0 ? 0 : 37;
    PetscCall(MapSampleGenerate((MapSampleType)type, 4, names, n, -0.5, 1.5, 7, NULL, &n1, &C1));
    PetscCall(MapSampleGenerate((MapSampleType)type, 4, names, n, -0.5, 1.5, 7, NULL, &n2, &C2));
    PetscCall(MapSampleGenerate((MapSampleType)type, 4, names, n, -0.5, 1.5, 8, NULL, &n3, &C3));
    CHECK(n1 == (type == 0 ? 30 : 37) && n1 == n2 && n2 == n3, "type %d: counts %d %d %d", type, (int)n1, (int)n2, (int)n3);
    CHECK(!memcmp(C1, C2, sizeof(double) * n1 * 4), "type %d: same seed gave different designs", type);
    CHECK(memcmp(C1, C3, sizeof(double) * n1 * 4) != 0, "type %d: different seeds gave the same design", type);
    for (PetscInt i = 0; i < n1 * 4; i++) CHECK(C1[i] >= -0.5 && C1[i] <= 1.5, "type %d: value %g outside the box", type, C1[i]);
    PetscCall(PetscFree(C1));
    PetscCall(PetscFree(C2));
    PetscCall(PetscFree(C3));
  }
  /* reference: (T+1)(T+2) points; the first T are the one-hots lo + (hi-lo) e_i, then origin and centre */
  PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 4, names, 0, 0, 2, 1, NULL, &n1, &C1));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) CHECK(C1[i * 4 + j] == (i == j ? 2.0 : 0.0), "one-hot %d coordinate %d is %g", i, j, C1[i * 4 + j]);
  for (int j = 0; j < 4; j++) CHECK(C1[4 * 4 + j] == 0 && C1[5 * 4 + j] == 1, "origin/centre wrong at %d", j);
  /* the structured prefix does not depend on the seed; at least 3 distinct levels per coordinate */
  for (int j = 0; j < 4; j++) {
    int nlev = 0;
    for (PetscInt p = 0; p < n1; p++) {
      int seen = 0;
      for (PetscInt q = 0; q < p; q++) seen |= C1[q * 4 + j] == C1[p * 4 + j];
      nlev += !seen;
    }
    CHECK(nlev >= 3, "coordinate %d has %d levels", j, nlev);
  }
  PetscCall(PetscFree(C1));
  /* a truncated reference design keeps its prefix */
  PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 4, names, 3, 0, 1, 1, NULL, &n1, &C1));
  CHECK(n1 == 3 && C1[0] == 1 && C1[5] == 1 && C1[10] == 1, "truncated reference design wrong");
  PetscCall(PetscFree(C1));
  PetscFunctionReturn(0);
}

/* every coordinate of an n-point LHS puts exactly one point into each of the n strata */
static PetscErrorCode TestLHS(void)
{
  double  *C;
  PetscInt n;
  int     *cnt;
  const double lo = -1, hi = 3;

  PetscFunctionBegin;
  for (PetscInt nreq = 1; nreq <= 200; nreq += 199 / 3) {
    PetscCall(MapSampleGenerate(MAP_SAMPLE_LHS, 6, NULL, nreq, lo, hi, 12345, NULL, &n, &C));
    CHECK(n == nreq, "lhs gave %d points, asked %d", (int)n, (int)nreq);
    PetscCall(PetscCalloc1(n, &cnt));
    for (int j = 0; j < 6; j++) {
      PetscCall(PetscArrayzero(cnt, n));
      for (PetscInt p = 0; p < n; p++) {
        PetscInt s = (PetscInt)floor((C[p * 6 + j] - lo) / (hi - lo) * n);
        CHECK(s >= 0 && s < n, "stratum %d out of range", (int)s);
        if (s >= 0 && s < n) cnt[s]++;
      }
      for (PetscInt s = 0; s < n; s++) CHECK(cnt[s] == 1, "n=%d coordinate %d stratum %d holds %d points", (int)n, j, (int)s, cnt[s]);
    }
    PetscCall(PetscFree(cnt));
    PetscCall(PetscFree(C));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode TestRank(void)
{
  double *C;
  PetscInt n;
  int      rank, F;
  char     msg[1024];

  PetscFunctionBegin;
  for (int T = 2; T <= 12; T++) {
    PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, T, NULL, 0, 0, 1, 3, NULL, &n, &C));
    PetscCall(MapSampleDesignRank(T, n, C, &rank, &F));
    CHECK(n == (T + 1) * (T + 2) && F == (T + 1) * (T + 2) / 2 && rank == F, "reference T=%d: n=%d rank %d of F=%d", T, (int)n, rank, F);
    PetscCall(MapSampleCheckIdentifiable(T, n, C));
    PetscCall(PetscFree(C));
    PetscCall(MapSampleGenerate(MAP_SAMPLE_LHS, T, NULL, (T + 1) * (T + 2), 0, 1, 3, NULL, &n, &C));
    PetscCall(MapSampleDesignRank(T, n, C, &rank, &F));
    CHECK(rank == F, "lhs T=%d: rank %d of F=%d", T, rank, F);
    PetscCall(PetscFree(C));
  }
  /* one-hots only: n = T < F */
  {
    const int T = 5;
    PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, T, NULL, T, 0, 1, 3, NULL, &n, &C));
    PetscCall(MapSampleDesignRank(T, n, C, &rank, &F));
    CHECK(rank == T && F == 21, "one-hots T=5: rank %d (want 5) F %d", rank, F);
    EXPECT_ERROR(MapSampleCheckIdentifiable(T, n, C), msg);
    CHECK(strstr(msg, "has rank 5") && strstr(msg, "F = 21") && strstr(msg, "-map_sample_type lhs"), "one-hot message: %s", msg);
    PetscCall(PetscFree(C));
  }
  /* the reference code's degenerate lattice {0,1}^8: c_i^2 = c_i loses T columns */
  {
    const int T = 8;
    PetscCall(PetscMalloc1(256 * T, &C));
    for (int p = 0; p < 256; p++)
      for (int j = 0; j < T; j++) C[p * T + j] = (p >> j) & 1;
    PetscCall(MapSampleDesignRank(T, 256, C, &rank, &F));
    CHECK(F == 45 && rank == 37, "{0,1}^8: rank %d (want 37) of %d", rank, F);
    EXPECT_ERROR(MapSampleCheckIdentifiable(T, 256, C), msg);
    CHECK(strstr(msg, "has rank 37") && strstr(msg, "F = 45") && strstr(msg, "distinct levels"), "lattice message: %s", msg);
    PetscCall(PetscFree(C));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode TestCSV(const char *dir)
{
  const char *names[] = {"alpha", "beta", "gamma"};
  char        path[MAP_PATH_LEN], msg[1024];
  double     *C;
  PetscInt    n;
  PetscMPIInt rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  /* any column order, c_ prefix or not, extra columns ignored, CRLF, comments and blank lines */
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/good_r%d.csv", dir, (int)rank));
  PetscCall(WriteFile(path, "acc_alpha,gamma, c_beta ,c_alpha,loss_beta\r\n"
                            "0.9,0.3,0.2,0.1,1e3\r\n"
                            "# a comment\n"
                            "\n"
                            "nan,-1.5e-1,  2 ,0,x\n"));
  PetscCall(MapReadCoeffCSV(path, 3, names, &n, &C));
  CHECK(n == 2, "good.csv: %d rows", (int)n);
  if (n == 2) {
    const double want[] = {0.1, 0.2, 0.3, 0, 2, -0.15};
    for (int i = 0; i < 6; i++) CHECK(C[i] == want[i], "good.csv value %d = %.17g, want %g", i, C[i], want[i]);
  }
  PetscCall(PetscFree(C));
  /* through the sampler */
  PetscCall(MapSampleGenerate(MAP_SAMPLE_FILE, 3, names, 0, 0, 1, 0, path, &n, &C));
  CHECK(n == 2 && C[4] == 2, "file sampler: n=%d", (int)n);
  PetscCall(PetscFree(C));

  struct {
    const char *text, *want1, *want2;
  } bad[] = {
    {"alpha,beta,gamma\n0.1,0.2,0.3\n0.1,zz,0.3\n",  "line 3",           "\"zz\" is not a number"},
    {"alpha,beta,gamma\n0.1,1e-400,0.3\n",           "line 2",           "\"1e-400\" is out of range: too close to 0"},
    {"alpha,beta,gamma\n0.1,0.2,0.3,0.4\n",           "line 2",           "expected 3 fields as in the header, got 4"},
    {"alpha,beta,gamma\n0.1,0.2\n",                   "line 2",           "got 2"},
    {"alpha,gamma,acc_beta\n0.1,0.2,0.3\n",           "no column for task beta", "line 1"},
    {"alpha,beta,c_beta,gamma\n0.1,0.2,0.3,0.4\n",    "task beta has two columns", "line 1"},
    {"alpha,beta,gamma\n0.1,inf,0.3\n",               "line 2",           "\"inf\" is not a finite number"},
    {"alpha,beta,gamma\n0.1,,0.3\n",                  "line 2",           "(task beta)"},
    {"alpha,beta,gamma\n",                            "no coefficient rows", "bad"},
    {"",                                              "empty file",       "bad"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    PetscCall(PetscSNPrintf(path, sizeof(path), "%s/bad%d_r%d.csv", dir, (int)k, (int)rank));
    PetscCall(WriteFile(path, bad[k].text));
    EXPECT_ERROR(MapReadCoeffCSV(path, 3, names, &n, &C), msg);
    CHECK(strstr(msg, path) && strstr(msg, bad[k].want1) && strstr(msg, bad[k].want2), "bad csv %d: message \"%s\"", (int)k, msg);
  }
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/does_not_exist.csv", dir));
  EXPECT_ERROR(MapReadCoeffCSV(path, 3, names, &n, &C), msg);
  CHECK(strstr(msg, "cannot open") && strstr(msg, path), "missing file message: %s", msg);
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  PetscMPIInt rank;
  int         total;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCheck(argc >= 2, PETSC_COMM_WORLD, PETSC_ERR_ARG_WRONG, "usage: test_sample <scratch dir>");
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(TestDeterminismAndBox());
  PetscCall(TestLHS());
  PetscCall(TestRank());
  PetscCall(TestCSV(argv[1]));
  /* every rank must produce the very same design (no rank-dependent draws) */
  {
    double  *C;
    PetscInt n;
    char     hex[65], hex0[65];
    PetscCall(MapSampleGenerate(MAP_SAMPLE_REFERENCE, 6, NULL, 0, 0, 1, 42, NULL, &n, &C));
    MapSha256(C, sizeof(double) * n * 6, hex);
    PetscCall(PetscArraycpy(hex0, hex, 65));
    PetscCallMPI(MPI_Bcast(hex0, 65, MPI_CHAR, 0, PETSC_COMM_WORLD));
    CHECK(!strcmp(hex, hex0), "rank %d design differs from rank 0's", (int)rank);
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "reference design T=6 seed 42 sha256 %s\n", hex));
    PetscCall(PetscFree(C));
  }
  PetscCallMPI(MPI_Allreduce(&nfail, &total, 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: %d failures\n", total ? "SOME FAILED" : "ALL OK", total));
  PetscCall(PetscFinalize());
  return total ? 1 : 0;
}
