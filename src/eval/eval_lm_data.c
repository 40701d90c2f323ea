/* eval_lm_data: the lm evaluator's task files, tokenizer-agnostic.
   .bin   llm.c's format: 256 little-endian int32 (magic 20240520 version 1 then uint16 ids, or magic
          20240801 version 7 then uint32 ids; [2] = token count), then the ids. Scored over
          non-overlapping windows of L tokens: window k feeds [kL, kL+L) and predicts [kL+1, kL+L].
   .jsonl one multiple-choice question per line: {"context": [ids], "choices": [[ids], ...],
          "answer": k}; scored by the summed log-likelihood of each choice given the context. */
#include "evallmimpl.h"
#include <jansson.h>
#include <stdio.h>
#include <errno.h>

static PetscErrorCode LoadBin(MPI_Comm comm, const char *file, int64_t V, int64_t npos, int L, int64_t maxwin, int G, int g, MapLMTask *task)
{
  int32_t hdr[256];
  FILE   *f = fopen(file, "rb");
  size_t  got;
  int64_t size, width;

  PetscFunctionBegin;
  PetscCheck(f, comm, PETSC_ERR_FILE_OPEN, "lm task file %s: cannot open (%s)", file, strerror(errno));
  PetscCheck(!fseeko(f, 0, SEEK_END), comm, PETSC_ERR_FILE_READ, "lm task file %s: cannot seek", file);
  size = (int64_t)ftello(f);
  rewind(f);
  got = size >= 1024 ? fread(hdr, sizeof(int32_t), 256, f) : 0;
  if (got != 256) fclose(f);
  PetscCheck(size > 0, comm, PETSC_ERR_FILE_UNEXPECTED, "lm task file %s is empty: expected llm.c's 1024-byte header and token ids", file);
  PetscCheck(got == 256, comm, PETSC_ERR_FILE_UNEXPECTED, "lm task file %s: %" PetscInt64_FMT " bytes, shorter than llm.c's 1024-byte header", file, size);
  if (hdr[0] == 20240520 && hdr[1] == 1) width = 2;
  else if (hdr[0] == 20240801 && hdr[1] == 7) width = 4;
  else {
    fclose(f);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED,
            "lm task file %s: header magic %d version %d; expected llm.c's 20240520 version 1 (uint16 ids) or 20240801 version 7 (uint32 ids)",
            file, hdr[0], hdr[1]);
  }
  const int64_t ntok = hdr[2];
  if (ntok <= 0 || size < 1024 + ntok * width) fclose(f);
  PetscCheck(ntok > 0, comm, PETSC_ERR_FILE_UNEXPECTED, "lm task file %s: the header gives %" PetscInt64_FMT " tokens (empty)", file, ntok);
  PetscCheck(size >= 1024 + ntok * width, comm, PETSC_ERR_FILE_UNEXPECTED,
             "lm task file %s: the header gives %" PetscInt64_FMT " tokens of %d bytes but the file holds %" PetscInt64_FMT " bytes after the header",
             file, ntok, (int)width, size - 1024);
  if (L > npos) fclose(f);
  PetscCheck(L <= npos, comm, PETSC_ERR_ARG_OUTOFRANGE, "lm task file %s: -map_lm_context %d is longer than the model's %" PetscInt64_FMT " positions",
             file, L, npos);
  int64_t W = (ntok - 1) / L;
  if (maxwin > 0 && W > maxwin) W = maxwin;
  if (W < 1) fclose(f);
  PetscCheck(W >= 1, comm, PETSC_ERR_FILE_UNEXPECTED,
             "lm task file %s: %" PetscInt64_FMT " tokens, fewer than one window of -map_lm_context %d plus the next token", file, ntok, L);
  task->mc            = PETSC_FALSE;
  task->L             = L;
  task->nitem         = W;
  task->i0            = W * g / G;
  task->i1            = W * (g + 1) / G;
  const int64_t first = task->i0 * L, n = (task->i1 - task->i0) * L + 1;
  void         *raw;
  int64_t       bad = -1, badv = 0;
  PetscCall(PetscMalloc1(n, &task->tok));
  PetscCall(PetscMalloc(n * width + 1, &raw));
  int ok = !fseeko(f, 1024 + first * width, SEEK_SET) && fread(raw, (size_t)width, (size_t)n, f) == (size_t)n;
  fclose(f);
  for (int64_t i = 0; ok && i < n; i++) {
    int64_t v    = width == 2 ? ((uint16_t *)raw)[i] : (int64_t)((uint32_t *)raw)[i];
    task->tok[i] = (int32_t)v;
    if (v >= V && bad < 0) bad = first + i, badv = v;
  }
  PetscCall(PetscFree(raw));
  MapCheckAll(comm, ok, PETSC_ERR_FILE_READ, "lm task file %s: cannot read tokens %" PetscInt64_FMT "..%" PetscInt64_FMT, file, first, first + n);
  MapCheckAll(comm, bad < 0, PETSC_ERR_ARG_OUTOFRANGE, "lm task file %s: token %" PetscInt64_FMT " is id %" PetscInt64_FMT ", outside the model's vocabulary of %" PetscInt64_FMT,
              file, bad, badv, V);
  PetscFunctionReturn(0);
}

/* an array of token ids: appended to tok; returns its length, or -1 with msg */
static int64_t ParseIds(json_t *a, int64_t V, int32_t **tok, int64_t *ntok, int64_t *cap, char *msg, size_t len)
{
  if (!json_is_array(a)) return snprintf(msg, len, "expected an array of token ids"), -1;
  size_t  i;
  json_t *v;
  json_array_foreach(a, i, v)
  {
    if (!json_is_integer(v)) return snprintf(msg, len, "element %zu is not an integer", i), -1;
    json_int_t id = json_integer_value(v);
    if (id < 0 || id >= V) return snprintf(msg, len, "token id %lld is outside the model's vocabulary of %lld", (long long)id, (long long)V), -1;
    if (*ntok >= *cap) {
      *cap       = 2 * *cap + 1024;
      int32_t *t = realloc(*tok, (size_t)*cap * sizeof(int32_t));
      if (!t) return snprintf(msg, len, "out of memory"), -1;
      *tok = t;
    }
    (*tok)[(*ntok)++] = (int32_t)id;
  }
  return (int64_t)json_array_size(a);
}

static PetscErrorCode LoadJSONL(MPI_Comm comm, const char *file, int64_t V, int64_t npos, int G, int g, MapLMTask *task)
{
  FILE    *f    = fopen(file, "r");
  char    *line = NULL, msg[600] = "", det[400] = "";
  size_t   cap    = 0;
  int64_t  lineno = 0, n = 0, ntok = 0, tcap = 0, nchoice = 0, icap = 0, ccap = 0;
  int32_t *tok = NULL;
  /* per item: context offset, context length, first choice, choices, answer; per choice: offset, length */
  int64_t *item = NULL, *ch = NULL;

  PetscFunctionBegin;
  PetscCheck(f, comm, PETSC_ERR_FILE_OPEN, "lm task file %s: cannot open (%s)", file, strerror(errno));
  while (!msg[0] && getline(&line, &cap, f) > 0) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (!*s) continue;
    json_error_t err;
    json_t      *o = json_loads(s, 0, &err), *ctx, *chs, *ans;
    if (!o || !json_is_object(o)) {
      snprintf(msg, sizeof(msg), "line %" PetscInt64_FMT ": not a JSON object (%s)", lineno, o ? "another value" : err.text);
      if (o) json_decref(o);
      break;
    }
    ctx = json_object_get(o, "context"), chs = json_object_get(o, "choices"), ans = json_object_get(o, "answer");
    if (!ctx || !chs || !ans || !json_is_array(chs) || !json_array_size(chs) || !json_is_integer(ans)) {
      snprintf(msg, sizeof(msg), "line %" PetscInt64_FMT ": expected {\"context\": [ids], \"choices\": [[ids], ...], \"answer\": k}", lineno);
      json_decref(o);
      break;
    }
    if (n + 1 > icap) {
      icap = 2 * icap + 64;
      item = realloc(item, (size_t)icap * 5 * sizeof(int64_t));
    }
    int64_t c0 = ntok, nc = ParseIds(ctx, V, &tok, &ntok, &tcap, det, sizeof(det));
    if (nc == 0) snprintf(det, sizeof(det), "the context is empty (at least one token: the first prediction needs an input)");
    if (nc <= 0) snprintf(msg, sizeof(msg), "line %" PetscInt64_FMT ": context: %s", lineno, det);
    size_t  k;
    json_t *c;
    int64_t nch = (int64_t)json_array_size(chs);
    json_array_foreach(chs, k, c)
    {
      if (msg[0]) break;
      if (nchoice + 1 > ccap) {
        ccap = 2 * ccap + 64;
        ch   = realloc(ch, (size_t)ccap * 2 * sizeof(int64_t));
      }
      int64_t o0 = ntok, m = ParseIds(c, V, &tok, &ntok, &tcap, det, sizeof(det));
      if (m == 0) snprintf(det, sizeof(det), "the choice is empty");
      else if (m > 0 && nc + m - 1 > npos)
        snprintf(det, sizeof(det), "context (%" PetscInt64_FMT ") + choice (%" PetscInt64_FMT ") - 1 = %" PetscInt64_FMT " tokens, longer than the model's %" PetscInt64_FMT " positions",
                 nc, m, nc + m - 1, npos);
      if (m <= 0 || nc + m - 1 > npos) snprintf(msg, sizeof(msg), "line %" PetscInt64_FMT ": choice %zu: %s", lineno, k, det);
      ch[2 * nchoice] = o0, ch[2 * nchoice + 1] = m, nchoice++;
    }
    json_int_t a = json_integer_value(ans);
    if (!msg[0] && (a < 0 || a >= nch)) snprintf(msg, sizeof(msg), "line %" PetscInt64_FMT ": answer %lld, but there are %lld choices", lineno, (long long)a, (long long)nch);
    json_decref(o);
    if (msg[0]) break;
    item[5 * n] = c0, item[5 * n + 1] = nc, item[5 * n + 2] = nchoice - nch, item[5 * n + 3] = nch, item[5 * n + 4] = a;
    n++;
  }
  free(line);
  fclose(f);
  if (msg[0] || !n) free(tok), free(item), free(ch);
  PetscCheck(!msg[0], comm, PETSC_ERR_FILE_UNEXPECTED, "lm task file %s: %s", file, msg);
  PetscCheck(n > 0, comm, PETSC_ERR_FILE_UNEXPECTED, "lm task file %s is empty: expected JSON lines {\"context\": [ids], \"choices\": [[ids], ...], \"answer\": k}", file);
  task->mc    = PETSC_TRUE;
  task->nitem = n;
  task->i0    = n * g / G;
  task->i1    = n * (g + 1) / G;
  PetscCall(PetscMalloc1(ntok + 1, &task->tok));
  PetscCall(PetscMemcpy(task->tok, tok, (size_t)ntok * sizeof(int32_t)));
  PetscCall(PetscMalloc5(n, &task->ctxoff, n, &task->nctx, n, &task->nch, n, &task->choff, n, &task->answer));
  PetscCall(PetscMalloc2(nchoice, &task->chstart, nchoice, &task->chlen));
  for (int64_t i = 0; i < n; i++) {
    task->ctxoff[i] = item[5 * i], task->nctx[i] = (int)item[5 * i + 1], task->choff[i] = item[5 * i + 2];
    task->nch[i] = (int)item[5 * i + 3], task->answer[i] = (int)item[5 * i + 4];
  }
  for (int64_t j = 0; j < nchoice; j++) task->chstart[j] = ch[2 * j], task->chlen[j] = (int)ch[2 * j + 1];
  free(tok), free(item), free(ch);
  PetscFunctionReturn(0);
}

PetscErrorCode MapLMTaskLoad(MPI_Comm comm, const char *file, int64_t V, int64_t npos, int L, int64_t maxwin, int G, int g, MapLMTask *task)
{
  size_t n = strlen(file);

  PetscFunctionBegin;
  PetscCall(PetscMemzero(task, sizeof(*task)));
  if (n > 6 && !strcmp(file + n - 6, ".jsonl")) PetscCall(LoadJSONL(comm, file, V, npos, G, g, task));
  else PetscCall(LoadBin(comm, file, V, npos, L, maxwin, G, g, task));
  PetscFunctionReturn(0);
}

PetscErrorCode MapLMTaskDestroy(MapLMTask *task)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(task->tok));
  if (task->mc) {
    PetscCall(PetscFree5(task->ctxoff, task->nctx, task->nch, task->choff, task->answer));
    PetscCall(PetscFree2(task->chstart, task->chlen));
  }
  PetscFunctionReturn(0);
}
