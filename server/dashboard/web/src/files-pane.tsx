import { restGet } from "./api.js";
import { bytes, count } from "./format.js";
import { usePoll } from "./hooks.js";
import { ErrorNote, ServiceGate } from "./parts.js";

/** GET /api/v1/storage/files/stats (SPEC §4): files and bytes by kind and by status. */
export interface FileStats {
  readonly total_files?: number;
  readonly total_bytes?: number;
  readonly by_kind?: Record<string, { count?: number; bytes?: number }>;
  readonly by_status?: Record<string, { count?: number; bytes?: number }>;
}

export const FILES_REFRESH_MS = 10_000;

/** Stored files counted by kind and status, from StorageService.GetFileStats. */
export function FilesPane() {
  return (
    <ServiceGate service="StorageService" name="files">
      <FileFigures />
    </ServiceGate>
  );
}

function FileFigures() {
  const stats = usePoll((signal) => restGet<FileStats>("/api/v1/storage/files/stats", {}, signal), FILES_REFRESH_MS);
  if (stats.error && !stats.data) return <ErrorNote error={stats.error} what="file figures" />;
  if (!stats.data) return <p role="status">Loading file figures…</p>;
  const data = stats.data;
  return (
    <div class="pane-grid">
      <section aria-labelledby="files-total-title" class="card">
        <h2 id="files-total-title">All files</h2>
        <dl class="figures">
          <div>
            <dt>Files</dt>
            <dd data-figure="files">{count(data.total_files)}</dd>
          </div>
          <div>
            <dt>Bytes</dt>
            <dd>{bytes(data.total_bytes)}</dd>
          </div>
        </dl>
      </section>
      <Breakdown id="files-kind" title="By kind" column="Kind" groups={data.by_kind ?? {}} />
      <Breakdown id="files-status" title="By status" column="Status" groups={data.by_status ?? {}} />
    </div>
  );
}

function Breakdown({ id, title, column, groups }: { id: string; title: string; column: string; groups: NonNullable<FileStats["by_kind"]> }) {
  const rows = Object.entries(groups).sort(([a], [b]) => a.localeCompare(b));
  const most = Math.max(1, ...rows.map(([, g]) => g.bytes ?? 0));
  return (
    <section aria-labelledby={`${id}-title`} class="card">
      <h2 id={`${id}-title`}>{title}</h2>
      <table data-table={id}>
        <thead>
          <tr>
            <th scope="col">{column}</th>
            <th scope="col" class="num">Files</th>
            <th scope="col" class="num">Bytes</th>
            <th scope="col">
              <span class="visually-hidden">Share of bytes</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={4}>No files.</td>
            </tr>
          )}
          {rows.map(([name, g]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td class="num">{count(g.count)}</td>
              <td class="num">{bytes(g.bytes)}</td>
              <td aria-hidden="true" class="share">
                <span class="share-bar" style={{ width: `${((g.bytes ?? 0) / most) * 100}%` }} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
