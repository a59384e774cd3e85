/**
 * An error the user caused and can fix (a busy port, a missing directory, a bad user name):
 * printed as one line, never with a stack. `exitCode` follows the CLI's convention:
 * 2 for a bad command line, 1 for everything found at run time.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** `errno` text a person can read: "connection refused" for ECONNREFUSED, and so on. */
export function describeErrno(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'is already in use';
    case 'EADDRNOTAVAIL':
      return 'is not an address of this machine';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENAMETOOLONG':
      return 'path too long for a unix socket';
    default:
      return code ?? 'unknown error';
  }
}
