/** An error as OpenAI sends it: an HTTP status, then `{"error":{"message","type","param","code"}}`. */
export interface ApiError {
  status: number;
  message: string;
  type: string;
  code: string | null;
  param: string | null;
  headers?: Record<string, string>;
}

export function apiError(status: number, type: string, code: string | null, message: string, param: string | null = null, headers?: Record<string, string>): ApiError {
  return { status, type, code, message, param, ...(headers ? { headers } : {}) };
}

/** The body every Yugong service answers an error with, in OpenAI's field order. */
export function errorBody(e: Pick<ApiError, 'message' | 'type' | 'param' | 'code'>): string {
  return JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}
