export type InfraErrorCode = 'NOT_BUILT' | 'PORT_IN_USE' | 'JAVA_MISSING' | 'APT_UNAVAILABLE' | 'INSTALL_FAILED' | 'UNHEALTHY' | 'EXITED' | 'BAD_CONFIG';

/** A setup problem the operator can fix; the message says how. */
export class InfraError extends Error {
  constructor(
    readonly code: InfraErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InfraError';
  }
}
