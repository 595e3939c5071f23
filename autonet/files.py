"""Files written atomically: exactly the path asked, all or nothing.

``write_atomically(path, write)`` calls ``write(file)`` on a new temporary file
with an unpredictable name, created exclusively beside ``path`` (so no planted
link is followed), flushes it to disk, then moves it over ``path``: readers see
the old file or the new one, never a mix; any failure removes the temporary
file. A symbolic link at ``path`` is followed: its target is replaced (as
``numpy.save`` and ``torch.save`` write through it), not the link. The writer's
process id is in the temporary name, so a later save to the
same path removes what a killed one (SIGKILL runs no cleanup) left behind.
"""
import errno
import os
import re
import tempfile


def write_atomically(path, write):
    """Write ``path`` through ``write(binary file)``, atomically (see the module doc)."""
    path = os.fsdecode(os.fspath(path))   # a bytes path too
    if os.path.islink(path):   # write into the link's target, as open() (numpy.save, torch.save)
        path = os.path.realpath(path)
    directory = os.path.dirname(os.path.abspath(path))
    _refuse_an_unwritable_place(path, directory)
    stem = _temporary_stem(os.path.basename(path))
    _remove_stale_temporaries(directory, stem)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{stem}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, _mode_for(path))
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def _refuse_an_unwritable_place(path, directory):
    """Name the place when the file cannot be made there (the OSError of making the
    temporary file would name only that file)."""
    if not path:   # would make its temporary file in the parent of the working directory
        raise FileNotFoundError(errno.ENOENT, "an empty path names no file", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "cannot write a file over a directory", path)
    if not os.path.basename(path):   # "runs/model.npz/": open() says "Is a directory" too
        raise IsADirectoryError(errno.EISDIR, "a path ending in a separator names a directory, "
                                              "not a file", path)
    where = f"the directory to write {os.path.basename(path)!r} in"
    if not os.path.exists(directory):
        raise FileNotFoundError(errno.ENOENT, f"{where} does not exist (make it first with "
                                              f"os.makedirs)", directory)
    if not os.path.isdir(directory):
        raise NotADirectoryError(errno.ENOTDIR, f"{where} is a file", directory)


def _temporary_stem(base):
    """``base`` cut to 200 bytes: the temporary name adds some 22 (dots, the pid, 8 random
    characters, ``.tmp``), and a name of 233 to 255 bytes (the usual limit) must save too."""
    return os.fsencode(base)[:200].decode(errors="ignore")


def _remove_stale_temporaries(directory, base):
    """Remove temporary files a save to ``base`` left behind when its process was killed
    (SIGKILL runs no cleanup). The writer's pid is in the name: files of live processes,
    this one's other threads included, are saves in progress and stay."""
    pattern = re.compile(rf"\.{re.escape(base)}\.(\d+)\.[A-Za-z0-9_]+\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return   # mkstemp below reports an unusable directory
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, name))   # a link is removed, never followed
            except FileNotFoundError:
                pass   # another saver removed it first


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True   # another user's process (or no such pid): leave its file alone
    return True


def _mode_for(path):
    """Keep the permissions of the file being replaced; a new file gets what ``open`` gives
    one (numpy.save, torch.save): rw for all, less the process's umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask():
    """The process's umask, read without changing it (os.umask would, for every thread);
    where the system does not say (no /proc), the usual 022."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
