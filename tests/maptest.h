/* Shared by the C unit tests: CHECK counts and reports failures ("FAIL file:line: ..." lines,
   which ctest's FAIL_REGULAR_EXPRESSION catches); EXPECT_ERROR runs a call that must fail and keeps
   PETSc's message for the caller to inspect. */
#ifndef MAPMERGE_TESTS_MAPTEST_H
#define MAPMERGE_TESTS_MAPTEST_H

#include <petscsys.h>

static int nfail = 0;
#define CHECK(cond, ...) \
  do { \
    if (!(cond)) { \
      nfail++; \
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "FAIL %s:%d: ", __FILE__, __LINE__)); \
      PetscCall(PetscPrintf(PETSC_COMM_SELF, __VA_ARGS__)); \
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n")); \
    } \
  } while (0)

/* runs a call expected to fail; returns its error code and copies PETSc's message */
#define EXPECT_ERROR(call, msgbuf) \
  do { \
    PetscErrorCode e_; \
    const char    *txt_ = NULL; \
    char          *spec_ = NULL; \
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL)); \
    e_ = (call); \
    PetscCall(PetscPopErrorHandler()); \
    (msgbuf)[0] = 0; \
    if (e_) { \
      PetscErrorMessage(e_, &txt_, &spec_); \
      if (spec_) PetscCall(PetscStrncpy((msgbuf), spec_, sizeof(msgbuf))); \
    } \
    CHECK(e_ != 0, "expected an error from %s", #call); \
  } while (0)

#endif
