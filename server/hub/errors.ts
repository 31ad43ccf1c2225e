/** The one error type of model management, with a code the CLI and the server can act on. */
export type HubErrorCode =
  | 'bad_model_ref' // neither a directory nor an org/name hub id
  | 'not_in_cache' // --offline and the model was never fully downloaded
  | 'not_found' // the hub has no such repository, revision or file
  | 'network' // the hub could not be reached or the transfer broke off
  | 'checksum_mismatch' // downloaded bytes differ from the hub's size or hash
  | 'disk_full'; // not enough free space for the files still to download

export class HubError extends Error {
  constructor(
    readonly code: HubErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HubError';
  }
}
