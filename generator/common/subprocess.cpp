#include "common/subprocess.h"

#include "common/file.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace rr::proc {

namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  // O_CLOEXEC: a child started by another thread at the same moment must not inherit our ends.
  if (pipe2(fds, O_CLOEXEC) != 0) return make_error(ExitCode::environment, "cannot create a pipe: {}", std::strerror(errno));
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

std::vector<std::string> build_env(const Command& c) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  for (const auto& [name, value] : c.env) {
    std::string prefix = name + "=";
    std::erase_if(env, [&](const std::string& s) { return starts_with(s, prefix); });
    if (value) env.push_back(prefix + *value);
  }
  return env;
}

struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { posix_spawn_file_actions_init(&fa); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
};

}  // namespace

std::string Outcome::describe_end() const {
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, strsignal(signal));
  return fmt::format("exit status {}", exit_code);
}

Result<std::vector<Outcome>> run_pipeline(const std::vector<Command>& commands) {
  if (commands.empty()) return std::vector<Outcome>{};
  for (const auto& c : commands)
    if (c.argv.empty() || c.argv[0].empty()) return make_error(ExitCode::bad_input, "internal error: empty command");

  auto start = std::chrono::steady_clock::now();
  const size_t n = commands.size();
  std::vector<pid_t> pids(n, -1);
  std::vector<Fd> err_read(n);
  Fd out_read;
  Fd next_stdin;  // read end of the previous command's stdout

  auto reap_started = [&]() {
    for (pid_t p : pids)
      if (p > 0) {
        int st;
        ::kill(p, SIGTERM);
        ::waitpid(p, &st, 0);
      }
  };

  for (size_t i = 0; i < n; ++i) {
    const Command& c = commands[i];
    FileActions fa;
    Fd in;
    if (i == 0) {
      std::string path = c.stdin_file.empty() ? std::string("/dev/null") : c.stdin_file.string();
      in = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (in.get() < 0) {
        int e = errno;
        reap_started();
        return Error{fmt::format("cannot open {}: {}", path, std::strerror(e)), e == ENOENT ? ExitCode::missing : ExitCode::bad_input, {}};
      }
    } else {
      in = std::move(next_stdin);
    }
    auto out_pipe = make_pipe();
    auto err_pipe = make_pipe();
    if (!out_pipe || !err_pipe) {
      reap_started();
      return out_pipe ? err_pipe.error() : out_pipe.error();
    }
    posix_spawn_file_actions_adddup2(&fa.fa, in.get(), 0);
    posix_spawn_file_actions_adddup2(&fa.fa, out_pipe->write.get(), 1);
    posix_spawn_file_actions_adddup2(&fa.fa, err_pipe->write.get(), 2);
    if (i == 0)
      for (const auto& [ours, theirs] : c.inherit_fds) posix_spawn_file_actions_adddup2(&fa.fa, ours, theirs);  // dup2 drops O_CLOEXEC
    if (!c.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa.fa, c.cwd.c_str());

    std::vector<char*> argv;
    for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env = build_env(c);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa.fa, nullptr, argv.data(), envp.data());
    if (rc != 0) {
      reap_started();
      if (rc == ENOENT) return Error{fmt::format("cannot run {}: program not found", c.argv[0]), ExitCode::missing, {}};
      return make_error(ExitCode::environment, "cannot run {}: {}", c.argv[0], std::strerror(rc));
    }
    pids[i] = pid;
    err_read[i] = std::move(err_pipe->read);
    if (i + 1 < n) next_stdin = std::move(out_pipe->read);
    else out_read = std::move(out_pipe->read);
    // Our copies of the write ends close here, so readers see EOF when the children exit.
  }

  std::vector<Outcome> outcomes(n);
  // Read every stderr and the last stdout until all are closed.
  std::vector<pollfd> fds;
  std::vector<std::string*> sinks;
  for (size_t i = 0; i < n; ++i) {
    fds.push_back(pollfd{err_read[i].get(), POLLIN, 0});
    sinks.push_back(&outcomes[i].err);
  }
  fds.push_back(pollfd{out_read.get(), POLLIN, 0});
  sinks.push_back(&outcomes[n - 1].out);
  size_t open_count = fds.size();
  char buf[1 << 15];
  while (open_count > 0) {
    int r = ::poll(fds.data(), fds.size(), -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      ssize_t got = ::read(fds[k].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[k]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[k].fd = -1;  // the Fd objects close it
        --open_count;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    int st = 0;
    while (::waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st)) {
      outcomes[i].exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      outcomes[i].signal = WTERMSIG(st);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& o : outcomes) o.seconds = secs;
  return outcomes;
}

Result<Outcome> run(const Command& command) {
  RR_ASSIGN(auto outcomes, run_pipeline({command}));
  return std::move(outcomes.front());
}

std::optional<std::filesystem::path> find_program(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    if (::access(std::string(name).c_str(), X_OK) == 0) return std::filesystem::path(name);
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!p.empty()) {
    size_t colon = p.find(':');
    std::string_view dir = p.substr(0, colon);
    if (!dir.empty()) {
      std::filesystem::path cand = std::filesystem::path(dir) / name;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    if (colon == std::string_view::npos) break;
    p.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

std::string last_lines(std::string_view text, size_t n) {
  std::vector<std::string> lines;
  for (auto& l : split_lines(text))
    if (!trim(l).empty()) lines.push_back(l);
  size_t from = lines.size() > n ? lines.size() - n : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

std::string quote_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain =
        !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char ch : a) {
        if (ch == '\'') out += "'\\''";
        else out += ch;
      }
      out += '\'';
    }
  }
  return out;
}

}  // namespace rr::proc
