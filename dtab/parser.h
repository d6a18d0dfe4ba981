// Parsers for Finagle's dtab language: paths, prefixes, name trees, dentries
// and dtabs (shared/reference/dtab-semantics.md sections 1-5).
//
// Every parser skips leading and trailing whitespace and `#` comments and
// demands the end of input. Errors are InvalidArgument with Finagle's message
// shape, e.g. "label char expected but end of input found at '/foo/bar/[]'".
// ASCII only (DESIGN.md decision 2): whitespace is ` \t\n\v\f\r` and
// `\x1c-\x1f`; weights use the digits 0-9 and must be finite (an overflowing
// weight is InvalidArgument); comments may hold any valid UTF-8, and invalid
// UTF-8 in one is InvalidArgument.
//
// Thread-safety: pure functions, safe to call concurrently.
#ifndef DTABD_DTAB_PARSER_H_
#define DTABD_DTAB_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dtab/dtab.h"
#include "dtab/name_tree.h"
#include "dtab/path.h"

namespace dtabd::dtab {

struct ParseOptions {
  // Deepest nesting of parentheses accepted in a tree; deeper input fails
  // with InvalidArgument instead of exhausting the stack.
  int max_nesting = 100;
  // Inputs longer than this are quoted around the error position only, not
  // whole, in error messages.
  size_t max_quoted_input = 1024;
};

absl::StatusOr<Path> ParsePath(absl::string_view text, const ParseOptions& options = {});
absl::StatusOr<Prefix> ParsePrefix(absl::string_view text, const ParseOptions& options = {});
absl::StatusOr<NameTree<Path>> ParseTree(absl::string_view text,
                                         const ParseOptions& options = {});
absl::StatusOr<Dentry> ParseDentry(absl::string_view text, const ParseOptions& options = {});
// Empty text (or only whitespace and comments) is the empty dtab.
absl::StatusOr<Dtab> ParseDtab(absl::string_view text, const ParseOptions& options = {});

}  // namespace dtabd::dtab

#endif  // DTABD_DTAB_PARSER_H_
