# The sources satisfy .clang-format (clang-format 14, Debian 12): a change that does not is reformatted
# before it lands (`clang-format -i FILE`); the check changes nothing.
find_program(MAP_CLANG_FORMAT NAMES clang-format-14 clang-format)
if(MAP_CLANG_FORMAT)
  file(GLOB_RECURSE map_format_files CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/*.c ${CMAKE_SOURCE_DIR}/src/*.h
       ${CMAKE_SOURCE_DIR}/include/mapmerge/*.h)
  add_test(NAME format_check COMMAND ${MAP_CLANG_FORMAT} --dry-run -Werror --style=file ${map_format_files}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
else()
  message(STATUS "clang-format not found: the format_check test is not defined (scripts/setup.sh --tests installs it)")
endif()
