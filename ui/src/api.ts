// The plugin's JSON API (/failnotify/api), relative to the Airflow UI's <base href>.
// Reads use the UI's session cookie; writes also send the CSRF header from GET /session.

export type FieldErrors = Record<string, string>;

export class ApiError extends Error {
  status: number;
  fields: FieldErrors;

  constructor(status: number, message: string, fields: FieldErrors = {}) {
    super(message);
    this.status = status;
    this.fields = fields;
  }
}

type Session = { username: string; is_admin: boolean; csrf_header: string; csrf_token: string };

let session: Promise<Session> | undefined;

export const apiUrl = (path: string): string =>
  new URL(`failnotify/api${path}`, document.baseURI).toString();

const parse = async (response: Response): Promise<unknown> => {
  const text = await response.text();
  return text ? JSON.parse(text) : undefined;
};

const failure = (status: number, body: unknown): ApiError => {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (Array.isArray(detail)) {
    const fields: FieldErrors = {};
    for (const item of detail as Array<{ path?: string; loc?: string[]; msg: string }>) {
      const path = item.path ?? (item.loc ?? []).slice(1).join(".");
      fields[path] = fields[path] ? `${fields[path]}; ${item.msg}` : item.msg;
    }
    return new ApiError(status, "Please correct the fields marked below.", fields);
  }
  return new ApiError(status, typeof detail === "string" ? detail : `HTTP ${status}`);
};

export const getSession = (): Promise<Session> => {
  session ??= get<Session>("/session").catch((err: unknown) => {
    session = undefined;
    throw err;
  });
  return session;
};

export async function get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
  const url = new URL(apiUrl(path));
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await parse(response);
  if (!response.ok) throw failure(response.status, body);
  return body as T;
}

export async function send<T>(method: "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T> {
  const { csrf_header, csrf_token } = await getSession();
  const response = await fetch(apiUrl(path), {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", [csrf_header]: csrf_token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const parsed = await parse(response);
  if (!response.ok) throw failure(response.status, parsed);
  return parsed as T;
}

export const formatTime = (iso: string | null | undefined): string =>
  iso ? `${iso.slice(0, 19).replace("T", " ")} UTC` : "";
