/* Private to the run module: the journal, results writing and the run manifest. */
#ifndef MAPMERGE_RUNIMPL_H
#define MAPMERGE_RUNIMPL_H

#include <mapmerge/run.h>

/* Journal: one line per finished evaluation, "<json>\t<sha256(json)>\n", appended and fsync'ed by
   rank 0 before the next evaluation starts. A torn last line (crash mid-write) fails its checksum
   and is dropped on resume; every other mismatch is an error. */
typedef struct {
  char   kind[16]; /* "sample", "reeval", "pick" */
  int    index;
  int    T;
  double c[64];
  double acc[64], loss[64];
} MapJournalEntry;

typedef struct {
  char             path[MAP_PATH_LEN];
  int              n, cap;
  MapJournalEntry *entries;
} MapJournal;

PetscErrorCode MapJournalOpen(MPI_Comm comm, const char *path, PetscBool resume, MapJournal *j);
/* MapJournalFind - the entry for (kind, index) whose c matches bit for bit, or NULL; an entry with
   that key but other coefficients is an error (the run's design changed). Not collective. */
PetscErrorCode MapJournalFind(MapJournal *j, const char *kind, int index, int T, const double *c, const MapJournalEntry **e);
/* MapJournalAppend - collective; rank 0 appends and fsyncs. */
PetscErrorCode MapJournalAppend(MPI_Comm comm, MapJournal *j, const char *kind, int index, int T, const double *c,
                                const double *acc, const double *loss);
PetscErrorCode MapJournalClose(MapJournal *j);

/* Signals: SIGUSR1/SIGTERM set a flag; MapSignalPending agrees on it across ranks (collective). */
PetscErrorCode MapSignalInstall(void);
PetscErrorCode MapSignalPending(MPI_Comm comm, PetscBool *pending);

#endif
