/* Replays fuzz inputs (files, or every file in the folders given) through the harness, without
 * libFuzzer: the regression test for crashes the fuzzer once found. */
#include <mapmerge/safetensors.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)len + 1);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) exit(2);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)len);
  free(buf);
  return 1;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
  int count = 0;
  LLVMFuzzerInitialize(&argc, &argv);
  for (int a = 1; a < argc; a++) {
    struct stat sb;
    if (stat(argv[a], &sb)) continue;
    if (!S_ISDIR(sb.st_mode)) {
      count += replay_file(argv[a]);
      continue;
    }
    DIR           *d = opendir(argv[a]);
    struct dirent *e;
    char         **names = NULL;
    int            nn = 0;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      names       = realloc(names, sizeof(char *) * (size_t)(nn + 1));
      names[nn++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    if (nn) qsort(names, (size_t)nn, sizeof(char *), cmp);
    for (int i = 0; i < nn; i++) {
      char p[MAP_PATH_LEN];
      snprintf(p, sizeof(p), "%s/%.1000s", argv[a], names[i]);
      count += replay_file(p);
      free(names[i]);
    }
    free(names);
  }
  printf("replayed %d inputs\n", count);
  PetscFinalize();
  return 0;
}
