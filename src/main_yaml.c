/* The driver's look at an -options_file_yaml before PETSc reads it: PETSc keeps the last of two equal
   keys without a word, so an experiment file with `reevaluate:` twice silently runs with one of
   them. Plain C and libyaml (PETSc's own YAML reader), before MPI: every rank checks the same file. */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

int MapYAMLCheckDuplicates(const char *path, char *msg, size_t len);

#define MAP_YAML_DEPTH 32
#define MAP_YAML_KEYS  512

typedef struct {
  int    n;
  char  *key[MAP_YAML_KEYS];
  size_t line[MAP_YAML_KEYS];
  int    expect_key; /* the next scalar of this mapping is a key (else a value) */
} Level;

/* 0 when the file has no key twice in one mapping (or cannot be parsed: PETSc reports that);
   1 with a message naming the key, its path and both lines */
int MapYAMLCheckDuplicates(const char *path, char *msg, size_t len)
{
  FILE         *f = fopen(path, "rb");
  yaml_parser_t parser;
  yaml_event_t  ev;
  Level         lv[MAP_YAML_DEPTH];
  char          where[MAP_YAML_DEPTH][128];
  int           depth = -1, found = 0, done = 0;

  if (!f) return 0;
  memset(lv, 0, sizeof(lv));
  if (!yaml_parser_initialize(&parser)) {
    fclose(f);
    return 0;
  }
  yaml_parser_set_input_file(&parser, f);
  while (!done && !found && yaml_parser_parse(&parser, &ev)) {
    Level *L = depth >= 0 && depth < MAP_YAML_DEPTH ? &lv[depth] : NULL;
    switch (ev.type) {
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      if (L && L->expect_key == 0) L->expect_key = 1; /* the collection was this key's value */
      depth++;
      if (depth < MAP_YAML_DEPTH) {
        lv[depth].n          = 0;
        lv[depth].expect_key = ev.type == YAML_MAPPING_START_EVENT ? 1 : -1; /* -1: a sequence has no keys */
        if (depth > 0 && depth - 1 < MAP_YAML_DEPTH && lv[depth - 1].n)
          snprintf(where[depth], sizeof(where[depth]), "%s%s%s", depth > 1 ? where[depth - 1] : "", depth > 1 ? "." : "",
                   lv[depth - 1].key[lv[depth - 1].n - 1]);
        else where[depth][0] = 0;
      }
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      if (depth >= 0 && depth < MAP_YAML_DEPTH)
        for (int i = 0; i < lv[depth].n; i++) free(lv[depth].key[i]);
      depth--;
      break;
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
      if (!L || L->expect_key < 0) break;
      if (L->expect_key && ev.type == YAML_SCALAR_EVENT) {
        const char *k = (const char *)ev.data.scalar.value;
        for (int i = 0; i < L->n && !found; i++)
          if (!strcmp(L->key[i], k)) {
            snprintf(msg, len, "%s line %zu: key \"%s%s%s\" appears twice in one mapping (first on line %zu); PETSc would keep only the last", path,
                     (size_t)ev.start_mark.line + 1, where[depth], where[depth][0] ? "." : "", k, L->line[i]);
            found = 1;
          }
        if (L->n < MAP_YAML_KEYS) {
          L->key[L->n]  = strdup(k);
          L->line[L->n] = (size_t)ev.start_mark.line + 1;
          L->n++;
        }
        L->expect_key = 0;
      } else L->expect_key = 1;
      break;
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
  }
  for (int d = depth < MAP_YAML_DEPTH - 1 ? depth : MAP_YAML_DEPTH - 1; d >= 0; d--)
    for (int i = 0; i < lv[d].n; i++) free(lv[d].key[i]);
  yaml_parser_delete(&parser);
  fclose(f);
  return found;
}
