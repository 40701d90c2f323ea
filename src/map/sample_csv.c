/* sample_csv: reading coefficient vectors from a CSV file (-map_coeffs, -map_sample_type file). */
#include <mapmerge/sample_csv.h>
#include <errno.h>
#include <math.h>

/* strips surrounding blanks, a trailing CR and one level of double quotes, in place */
static char *MapCSVTrim(char *s)
{
  size_t len;

  while (*s == ' ' || *s == '\t') s++;
  len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n')) s[--len] = 0;
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    s[len - 1] = 0;
    s++;
  }
  return s;
}

/* splits line at commas in place; fields[] points into line; returns the count (or max+1 when more) */
static int MapCSVSplit(char *line, char **fields, int max)
{
  int   nf    = 0;
  char *start = line;

  for (char *p = line;; p++) {
    if (*p == ',' || *p == 0) {
      int end = (*p == 0);
      *p      = 0;
      if (nf < max) fields[nf] = MapCSVTrim(start);
      nf++;
      if (end) break;
      start = p + 1;
    }
  }
  return nf;
}

static PetscBool MapCSVBlank(const char *s)
{
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return PETSC_FALSE;
  return PETSC_TRUE;
}

/* the header's column of each task (c_<task> or <task>); on an error closes fp and frees line */
static PetscErrorCode MapCSVMatchHeader(const char *file, PetscInt lineno, int T, const char *const *task_names, int ncol, char **fields,
                                        int *col_of_task, char *line, FILE *fp)
{
  PetscFunctionBegin;
  for (int t = 0; t < T; t++) {
    col_of_task[t] = -1;
    for (int j = 0; j < ncol; j++) {
      const char *h = fields[j];
      if (!strncmp(h, "c_", 2) && strcmp(task_names[t], h) != 0) h += 2;
      if (strcmp(h, task_names[t])) continue;
      if (col_of_task[t] >= 0) {
        const char *prev = fields[col_of_task[t]];
        free(line);
        fclose(fp);
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s line %" PetscInt_FMT ": task %s has two columns (%s and %s)", file,
                lineno, task_names[t], prev, fields[j]);
      }
      col_of_task[t] = j;
    }
    if (col_of_task[t] < 0) {
      free(line);
      fclose(fp);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s line %" PetscInt_FMT ": no column for task %s (expected c_%s or %s in the header)",
              file, lineno, task_names[t], task_names[t], task_names[t]);
    }
  }
  PetscFunctionReturn(0);
}

/* one data row's coefficients into row[T]; on an error closes fp and frees line and data */
static PetscErrorCode MapCSVParseRow(const char *file, PetscInt lineno, int T, const char *const *task_names, char **fields, const int *col_of_task,
                                     char *line, FILE *fp, double *data, double *row)
{
  PetscFunctionBegin;
  for (int t = 0; t < T; t++) {
    const char *s = fields[col_of_task[t]];
    char       *end;
    errno    = 0;
    double v = strtod(s, &end);
    if (!s[0] || *end || errno == ERANGE || !isfinite(v)) {
      char        bad[64];
      const char *why = !s[0] || *end                    ? "is not a number"
                        : errno == ERANGE && fabs(v) < 1 ? "is out of range: too close to 0 for a double (underflow below 2.2e-308)"
                        : errno == ERANGE                ? "is out of range: too large for a double (overflow above 1.8e308)"
                                                         : "is not a finite number";
      PetscCall(PetscStrncpy(bad, s, sizeof(bad)));
      free(line);
      fclose(fp);
      PetscCall(PetscFree(data));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s line %" PetscInt_FMT ": column %d (task %s): \"%s\" %s", file, lineno,
              col_of_task[t] + 1, task_names[t], bad, why);
    }
    row[t] = v;
  }
  PetscFunctionReturn(0);
}

/*
  MapReadCoeffCSV - reads coefficient vectors from a CSV file. Not collective (call it on every
  rank, or on one and broadcast).

  The header names the columns; column "<task>" or "c_<task>" gives task <task>'s coefficient, in
  any order; other columns (acc_*, loss_*, ...) are ignored. Blank lines and lines starting with '#'
  are skipped. Errors name the file and the line: a task without a column, a task with two
  columns, a row with the wrong number of fields, a field that is not a finite number, no rows.

  Output: n rows, C[n*T] row-major in task order (PetscFree).
*/
PetscErrorCode MapReadCoeffCSV(const char *file, int T, const char *const *task_names, PetscInt *n, double **C)
{
  FILE    *fp;
  char    *line = NULL, **fields = NULL;
  size_t   cap = 0;
  ssize_t  len;
  int      ncol = 0, *col_of_task = NULL, maxf;
  PetscInt lineno = 0, nrow = 0, rowcap = 64;
  double  *data = NULL;

  PetscFunctionBegin;
  *n = 0;
  *C = NULL;
  PetscCheck(T >= 1 && task_names, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: need the task names to read coefficients", file);
  PetscCall(MapCheckInputFile(file, "coefficient file"));
  fp = fopen(file, "r");
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open coefficient file %s: %s", file, strerror(errno));

  /* header: the first line that is neither blank nor a comment */
  do {
    len = getline(&line, &cap, fp);
    lineno++;
  } while (len >= 0 && (MapCSVBlank(line) || line[0] == '#'));
  if (len < 0) {
    free(line);
    fclose(fp);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: empty file (expected a header naming the tasks)", file);
  }
  if (lineno == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) memmove(line, line + 3, strlen(line + 3) + 1); /* a UTF-8 BOM (spreadsheet exports) */
  maxf = 1;
  for (char *p = line; *p; p++)
    if (*p == ',') maxf++;
  PetscCall(PetscMalloc1(maxf, &fields));
  PetscCall(PetscMalloc1(T, &col_of_task));
  ncol = MapCSVSplit(line, fields, maxf);
  PetscCall(MapCSVMatchHeader(file, lineno, T, task_names, ncol, fields, col_of_task, line, fp));

  PetscCall(PetscMalloc1(rowcap * T, &data));
  while ((len = getline(&line, &cap, fp)) >= 0) {
    lineno++;
    if (MapCSVBlank(line) || line[0] == '#') continue;
    int nf = MapCSVSplit(line, fields, maxf);
    if (nf != ncol) {
      free(line);
      fclose(fp);
      PetscCall(PetscFree(data));
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s line %" PetscInt_FMT ": expected %d fields as in the header, got %d", file, lineno,
              ncol, nf);
    }
    if (nrow == rowcap) {
      double *grown;
      PetscCall(PetscMalloc1(2 * rowcap * T, &grown));
      PetscCall(PetscArraycpy(grown, data, rowcap * T));
      PetscCall(PetscFree(data));
      data = grown;
      rowcap *= 2;
    }
    PetscCall(MapCSVParseRow(file, lineno, T, task_names, fields, col_of_task, line, fp, data, data + nrow * T));
    nrow++;
  }
  free(line);
  fclose(fp);
  PetscCall(PetscFree(fields));
  PetscCall(PetscFree(col_of_task));
  if (!nrow) {
    PetscCall(PetscFree(data));
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: no coefficient rows after the header", file);
  }
  *n = nrow;
  *C = data;
  PetscFunctionReturn(0);
}
