/* eval_metric: the metric every evaluation reports (-map_metric NAME:higher|lower[:lo,hi], issue 16
   item 3): its parsing, reading it from a command/worker program's JSON, and the checks at each
   evaluation (a value outside the declared range is an error at once, not at fit time; a missing or
   non-finite value is a failed point that the run journals and leaves out of the fit). */
#include "evalimpl.h"
#include <math.h>
#include <jansson.h>

PetscErrorCode MapMetricParse(const char *spec, MapMetric *m)
{
  char        buf[256], *dir, *range;
  const char *hint = "expected NAME:higher|lower[:lo,hi], e.g. accuracy:higher:0,1, loss:lower:0, or reward:higher";

  PetscFunctionBegin;
  PetscCheck(strlen(spec) < sizeof(buf), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: too long; %s", spec, hint);
  PetscCall(PetscStrncpy(buf, spec, sizeof(buf)));
  memset(m, 0, sizeof(*m));
  dir = strchr(buf, ':');
  PetscCheck(dir && dir > buf, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: no %s; %s", spec, dir ? "name" : "direction", hint);
  *dir++ = 0;
  PetscCheck(strlen(buf) < sizeof(m->name) && !strpbrk(buf, " \t\"\\,"), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "-map_metric %s: the name \"%s\" must be a JSON key of at most %d characters without blanks, quotes or commas", spec, buf,
             (int)sizeof(m->name) - 1);
  PetscCall(PetscStrncpy(m->name, buf, sizeof(m->name)));
  range = strchr(dir, ':');
  if (range) *range++ = 0;
  PetscCheck(!strcmp(dir, "higher") || !strcmp(dir, "lower"), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "-map_metric %s: direction \"%s\"; %s", spec, dir, hint);
  m->lower = strcmp(dir, "lower") ? PETSC_FALSE : PETSC_TRUE;
  m->lo    = -INFINITY;
  m->hi    = INFINITY;
  if (range && range[0]) {
    char *comma = strchr(range, ','), *end;
    PetscCheck(comma, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: range \"%s\" has no comma; %s", spec, range, hint);
    *comma = 0;
    if (range[0]) {
      m->lo = strtod(range, &end);
      PetscCheck(!*end && isfinite(m->lo), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: lower bound \"%s\" is not a finite number", spec, range);
    }
    if (comma[1]) {
      m->hi = strtod(comma + 1, &end);
      PetscCheck(!*end && isfinite(m->hi), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: upper bound \"%s\" is not a finite number", spec, comma + 1);
    }
    PetscCheck(m->lo < m->hi, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "-map_metric %s: the range needs lo < hi, got %g,%g", spec, m->lo, m->hi);
  }
  PetscFunctionReturn(0);
}

void MapMetricFormat(const MapMetric *m, char *buf, size_t len)
{
  char lo[32] = "", hi[32] = "";
  if (isfinite(m->lo)) snprintf(lo, sizeof(lo), "%.17g", m->lo);
  if (isfinite(m->hi)) snprintf(hi, sizeof(hi), "%.17g", m->hi);
  if (!lo[0] && !hi[0]) snprintf(buf, len, "%s:%s", m->name, m->lower ? "lower" : "higher");
  else snprintf(buf, len, "%s:%s:%s,%s", m->name, m->lower ? "lower" : "higher", lo, hi);
}

PetscBool MapMetricIsDefault(const MapMetric *m)
{
  return !strcmp(m->name, "accuracy") && !m->lower && m->lo == 0 && m->hi == 1 ? PETSC_TRUE : PETSC_FALSE;
}

char *MapEvalJsonNonFinite(const char *s)
{
  static const char *tok[] = {"-Infinity", "Infinity", "NaN"};
  size_t             n = strlen(s), k = 0;
  char              *out   = malloc(2 * n + 1); /* "NaN" -> "null" grows by one: at most 2n */
  int                instr = 0;

  if (!out) return NULL;
  for (const char *p = s; *p;) {
    int hit = -1;
    if (!instr)
      for (int i = 0; i < 3 && hit < 0; i++)
        if (!strncmp(p, tok[i], strlen(tok[i]))) hit = i;
    if (hit >= 0) {
      memcpy(out + k, "null", 4);
      k += 4;
      p += strlen(tok[hit]);
      continue;
    }
    if (instr && *p == '\\' && p[1]) out[k++] = *p++;
    else if (*p == '"') instr = !instr;
    out[k++] = *p++;
  }
  out[k] = 0;
  return out;
}

/* one value of o: a number, null/absent (NaN); 1 for anything else */
static int ReadValue(json_t *o, const char *key, double *v, int *absent)
{
  json_t *x = json_object_get(o, key);
  *absent   = !x;
  *v        = NAN;
  if (!x || json_is_null(x)) return 0;
  if (!json_is_number(x)) return 1;
  *v = json_number_value(x);
  return 0;
}

int MapEvalReadMetrics(void *obj, const char *metric, const char *task, MapTaskMetrics *m, char *msg, size_t msglen)
{
  json_t     *o = (json_t *)obj;
  int         na, nl, nm;
  const char *bad = NULL;

  if (ReadValue(o, "accuracy", &m->accuracy, &na)) bad = "accuracy";
  if (ReadValue(o, "loss", &m->loss, &nl)) bad = "loss";
  if (ReadValue(o, metric, &m->metric, &nm)) bad = metric;
  if (bad) {
    snprintf(msg, msglen, "task %s: \"%s\" is neither a number nor null", task, bad);
    return 1;
  }
  /* accuracy, the default metric, is fitted with the loss beside it: both are needed */
  m->missing = nm || (!strcmp(metric, "accuracy") && nl);
  if (!isfinite(m->metric)) m->metric = NAN;
  m->correct = 0; /* unknown unless the program reports them */
  m->count   = 0;
  json_t *n = json_object_get(o, "count"), *k = json_object_get(o, "correct");
  if (n && json_is_integer(n)) m->count = (int64_t)json_integer_value(n);
  if (k && json_is_integer(k)) m->correct = (int64_t)json_integer_value(k);
  return 0;
}

/* After every evaluation (collective: the metrics are the same on every rank): the metric of each
   wanted task from the built-in evaluators' accuracy or loss, then the checks. */
PetscErrorCode MapEvalCheckMetrics(MapEvaluator ev, const PetscBool *want, MapTaskMetrics *metrics)
{
  const MapMetric *mt       = &ev->metric;
  PetscBool        external = !strcmp(ev->type, "command") || !strcmp(ev->type, "worker") ? PETSC_TRUE : PETSC_FALSE;
  char             spec[160];

  PetscFunctionBegin;
  MapMetricFormat(mt, spec, sizeof(spec));
  for (int t = 0; t < ev->T; t++) {
    MapTaskMetrics *m = &metrics[t];
    if (want && !want[t]) {
      m->metric = NAN;
      continue;
    }
    if (!external) m->metric = !strcmp(mt->name, "loss") ? m->loss : m->accuracy;
    if (!isfinite(m->metric)) m->metric = NAN;
    /* a key missing from the first answer is the program's habit, not a diverged model: say so */
    PetscCheck(!(ev->nevaluated == 0 && m->missing), ev->comm, PETSC_ERR_ARG_WRONG,
               "task %s: the %s evaluator's first answer has no \"%s\"%s; -map_metric %s names what MAP fits: make the program print it (e.g. "
               "{\"%s\": 0.9%s}), or pass the -map_metric of a key it prints",
               ev->tasks[t], ev->type, m->missing && !isnan(m->metric) ? "loss" : mt->name,
               m->missing && !isnan(m->metric) ? " (the default metric, accuracy, is fitted with the loss beside it)" : "", spec, mt->name,
               !strcmp(mt->name, "accuracy") ? ", \"loss\": 0.3" : "");
    if (!isnan(m->metric) && !(m->metric >= mt->lo && m->metric <= mt->hi)) {
      char vals[128]; /* plain %g: PETSc's would print "85." and "[0., 1.]" */
      snprintf(vals, sizeof(vals), "%s %g is outside [%g, %g]", mt->name, m->metric, mt->lo, mt->hi);
      SETERRQ(ev->comm, PETSC_ERR_ARG_OUTOFRANGE, "task %s: %s, the range -map_metric %s declares%s", ev->tasks[t], vals, spec,
              MapMetricIsDefault(mt) ? " (an accuracy is a fraction in [0, 1]; a percentage? pass -map_metric accuracy:higher:0,100)"
                                     : "; pass the range the values really have");
    }
  }
  ev->nevaluated++;
  PetscFunctionReturn(0);
}
