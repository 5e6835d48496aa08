#pragma once
// The command lines of segnode, segnoded and segnode-distill, declared with CLI11: help comes from
// the declarations. Header-only; only the programs include it (and link CLI11::CLI11). Exit codes
// follow sysexits: --help 0, a usage error 64 (EX_USAGE), a segnode::Error its exitCodeFor.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common/Error.h"

namespace segnode::cli {

// Options show their defaults in the help; an option given twice keeps its last value.
inline void setUp(CLI::App& app, const std::string& footer) {
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.footer(footer);
}

// "segnode models init": the program and the subcommands given.
inline std::string commandLine(const CLI::App& app) {
  std::string who = app.get_name();
  for (const CLI::App* a = &app; !a->get_subcommands().empty();) who += " " + (a = a->get_subcommands()[0])->get_name();
  return who;
}

// --help: prints it, 0. Else prints what is wrong (naming the option), 64. A misspelt option also
// leaves a required one missing: the misspelling is the news.
inline int usage(const CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);
  std::string who = commandLine(app), extra = CLI::detail::join(app.remaining(true), " ");
  std::fprintf(stderr, "%s: %s (see %s --help)\n", who.c_str(),
               extra.empty() ? e.what() : ("unknown option or argument: " + extra).c_str(), who.c_str());
  return 64;
}

// Parses argv and runs the one subcommand given (its CLI11 callback; one that exits non-zero
// throws CLI::RuntimeError(code)). A segnode::Error becomes "PROGRAM CMD: CODE: message".
inline int run(CLI::App& app, int argc, char** argv) {
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return usage(app, e);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s: %s\n", commandLine(app).c_str(), toString(e.code()), e.what());
    return exitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", commandLine(app).c_str(), e.what());
    return 70;
  }
}

}  // namespace segnode::cli
