/* eval_worker_json: the JSON lines of the worker protocol 1 (docs/evaluators-external.md): the
   hello and request lines mapmerge sends, and the check of the worker's answers. */
#include "evalworker.h"
#include <math.h>
#include <jansson.h>

static json_t *TaskList(MapEvaluator ev, MapEval_Worker *m, PetscBool wanted_only)
{
  json_t *list = json_array();
  for (int t = 0; t < ev->T; t++) {
    if (wanted_only && !MapEvalWanted(ev, t)) continue;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(ev->tasks[t]));
    json_object_set_new(o, "data", ev->ndata ? json_string(ev->data[t]) : json_null());
    json_object_set_new(o, "private", m->priv[t][0] ? json_string(m->priv[t]) : json_null());
    json_array_append_new(list, o);
  }
  return list;
}

static char *DumpLine(json_t *o)
{
  char  *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
  size_t n = s ? strlen(s) : 0;
  char  *l = s ? realloc(s, n + 2) : NULL;
  json_decref(o);
  if (!l) {
    free(s);
    return NULL;
  }
  l[n] = '\n', l[n + 1] = 0;
  return l;
}

char *MapWorkerHelloLine(MapEvaluator ev, MapEval_Worker *m)
{
  json_t     *o = json_object();
  MapStore    store;
  const char *sp;
  json_object_set_new(o, "mapmerge", json_string("hello"));
  json_object_set_new(o, "protocol", json_integer(MAP_WORKER_PROTOCOL));
  json_object_set_new(o, "version", json_string(MAPMERGE_VERSION));
  json_object_set_new(o, "mode", json_string(m->coefmode ? "coefficients" : "model"));
  if (!MapModelGetStore(ev->model, &store) && !MapStoreGetPath(store, &sp)) json_object_set_new(o, "store", json_string(sp));
  if (!m->coefmode) json_object_set_new(o, "dtype", json_string(MapDTypeName(m->dtype)));
  json_object_set_new(o, "tasks", TaskList(ev, m, PETSC_FALSE));
  /* which key each answer must hold, when not the default accuracy (protocol 1: an added key) */
  if (!MapMetricIsDefault(&ev->metric)) json_object_set_new(o, "metric", json_string(ev->metric.name));
  if (m->coefmode) {
    json_t *ct = json_array();
    for (int k = 0; k < m->ncoef; k++) json_array_append_new(ct, json_string(m->coef_tasks[k]));
    json_object_set_new(o, "coefficient_tasks", ct);
  }
  return DumpLine(o);
}

char *MapWorkerRequestLine(MapEvaluator ev, MapEval_Worker *m, const double *c)
{
  json_t *o = json_object(), *cv = json_array();
  json_object_set_new(o, "id", json_integer(m->nreq));
  for (int k = 0; k < ev->Tc; k++) json_array_append_new(cv, json_real(c[k]));
  json_object_set_new(o, "coefficients", cv);
  if (!m->coefmode) json_object_set_new(o, "model", json_string(m->model));
  json_object_set_new(o, "tasks", TaskList(ev, m, PETSC_TRUE));
  return DumpLine(o);
}

/* the answer to request id: metrics of the wanted tasks; 1 with msg on garbage or a reported error */
int MapWorkerParseAnswer(MapEvaluator ev, const char *line, int64_t id, MapTaskMetrics *met, char *msg, size_t mlen)
{
  json_error_t err;
  char        *text = MapEvalJsonNonFinite(line); /* Python's NaN/Infinity read as null: a failed point, not garbage */
  json_t      *root, *jid, *jerr, *jm;
  int          rc = 1;

  root = text ? json_loads(text, 0, &err) : NULL;
  free(text);

  if (!root || !json_is_object(root)) {
    snprintf(msg, mlen, "the worker answered a line that is not a JSON object (%s): %.300s", root ? "another JSON value" : err.text, line);
    goto done;
  }
  jid = json_object_get(root, "id");
  if (!jid || !json_is_integer(jid) || json_integer_value(jid) != id) {
    snprintf(msg, mlen, "the worker's answer has %s; expected \"id\": %lld. It sent: %.300s", !jid ? "no \"id\"" : "another \"id\"", (long long)id, line);
    goto done;
  }
  if ((jerr = json_object_get(root, "error"))) {
    snprintf(msg, mlen, "the worker reported an error: %.1000s", json_is_string(jerr) ? json_string_value(jerr) : line);
    goto done;
  }
  jm = json_object_get(root, "metrics");
  if (!jm || !json_is_object(jm)) {
    snprintf(msg, mlen, "the worker's answer has no \"metrics\" object: %.300s", line);
    goto done;
  }
  for (int t = 0; t < ev->T; t++) {
    if (!MapEvalWanted(ev, t)) continue;
    json_t *o = json_object_get(jm, ev->tasks[t]);
    if (!o || !json_is_object(o)) {
      snprintf(msg, mlen, "task %s: the worker's answer has no entry for the task; expected \"metrics\": {\"%s\": {\"%s\": x%s}}: %.300s", ev->tasks[t],
               ev->tasks[t], ev->metric.name, strcmp(ev->metric.name, "accuracy") ? "" : ", \"loss\": y", line);
      goto done;
    }
    if (MapEvalReadMetrics(o, ev->metric.name, ev->tasks[t], &met[t], msg, mlen)) {
      size_t l = strlen(msg);
      snprintf(msg + l, mlen - l, " in the worker's answer: %.300s", line);
      goto done;
    }
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}


int MapWorkerCheckHello(const char *line, int *data_per_request, char *msg, size_t mlen)
{
  json_error_t err;
  json_t      *root = json_loads(line, 0, &err), *p = root ? json_object_get(root, "protocol") : NULL;
  int          rc   = !p || !json_is_integer(p) || json_integer_value(p) != MAP_WORKER_PROTOCOL;
  *data_per_request = root && json_is_true(json_object_get(root, "data_per_request"));
  if (rc)
    snprintf(msg, mlen, "the worker's hello line has %s; expected {\"hello\": \"...\", \"protocol\": %d}. It sent: %.300s",
             !root ? "invalid JSON" : !p ? "no \"protocol\""
                                         : "another protocol version",
             MAP_WORKER_PROTOCOL, line);
  json_decref(root);
  return rc;
}
