# Generates a C++ source embedding migrations/*.sql (sorted by name) so the
# binary never needs the source tree at run time.
# Inputs: MIGRATIONS_DIR, OUTPUT.
file(GLOB sql_files "${MIGRATIONS_DIR}/*.sql")
list(SORT sql_files)
set(body "")
foreach(f IN LISTS sql_files)
  get_filename_component(name "${f}" NAME)
  string(REGEX MATCH "^([0-9]+)_" _ "${name}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "migration ${name} does not start with NNNN_")
  endif()
  math(EXPR number "${CMAKE_MATCH_1}")
  file(READ "${f}" sql)
  string(APPEND body "      {${number}, \"${name}\", R\"dtabd_sql(${sql})dtabd_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from migrations/*.sql by storage/embed_migrations.cmake.
#include \"storage/migrations.h\"

namespace dtabd::storage {

const std::vector<Migration>& EmbeddedMigrations() {
  static const auto* migrations = new std::vector<Migration>{
${body}  };
  return *migrations;
}

}  // namespace dtabd::storage
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
