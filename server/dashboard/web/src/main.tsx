import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { apiKey, setApiKey } from "./api.js";
import { AuditPane } from "./audit-pane.js";
import { FilesPane } from "./files-pane.js";
import { useKeyVersion } from "./hooks.js";
import { SystemPane } from "./system-pane.js";
import { TranslationPane } from "./translation-pane.js";
import "./styles.css";

const PANES = [
  { id: "system", label: "System", view: SystemPane },
  { id: "translation", label: "Translation", view: TranslationPane },
  { id: "files", label: "Files", view: FilesPane },
  { id: "audit", label: "Audit", view: AuditPane },
] as const;
type PaneId = (typeof PANES)[number]["id"];

function paneFromHash(): PaneId {
  const id = location.hash.slice(1);
  return PANES.some((p) => p.id === id) ? (id as PaneId) : "system";
}

/** The API key, entered once and kept for this browser session (sessionStorage), sent only as a header. */
function KeyForm() {
  useKeyVersion();
  const [draft, setDraft] = useState("");
  const held = apiKey() !== "";
  return (
    <form
      class="key-form"
      aria-label="Access"
      onSubmit={(e) => {
        e.preventDefault();
        setApiKey(draft.trim());
        setDraft("");
      }}
    >
      <label for="api-key">API key</label>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autocomplete="off"
        value={draft}
        onInput={(e) => setDraft(e.currentTarget.value)}
        placeholder={held ? "a key is in use" : "none: open access only"}
        aria-describedby="key-note"
      />
      <button type="submit">Use key</button>
      {held && (
        <button type="button" class="secondary" onClick={() => setApiKey("")}>
          Forget key
        </button>
      )}
      <span id="key-note" class="muted" role="status">
        {held ? "Key kept for this browser session." : "No key entered."}
      </span>
    </form>
  );
}

function App() {
  const [pane, setPane] = useState<PaneId>(paneFromHash);
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  useEffect(() => {
    const follow = () => setPane(paneFromHash());
    addEventListener("hashchange", follow);
    return () => removeEventListener("hashchange", follow);
  }, []);
  const choose = (id: PaneId, focus = false) => {
    history.replaceState(null, "", `#${id}`);
    setPane(id);
    if (focus) tabs.current[PANES.findIndex((p) => p.id === id)]?.focus();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    const at = PANES.findIndex((p) => p.id === pane);
    const to = e.key === "ArrowRight" ? at + 1 : e.key === "ArrowLeft" ? at - 1 : e.key === "Home" ? 0 : e.key === "End" ? PANES.length - 1 : undefined;
    if (to === undefined) return;
    e.preventDefault();
    choose(PANES[(to + PANES.length) % PANES.length]!.id, true);
  };
  const View = PANES.find((p) => p.id === pane)!.view;
  return (
    <>
      <header class="top">
        <h1>Persistence Service</h1>
        <KeyForm />
      </header>
      <nav class="tabs" role="tablist" aria-label="Dashboard panes" onKeyDown={onKeyDown}>
        {PANES.map((p, i) => (
          <button
            key={p.id}
            ref={(el) => {
              tabs.current[i] = el;
            }}
            type="button"
            role="tab"
            id={`tab-${p.id}`}
            aria-selected={p.id === pane}
            aria-controls={`pane-${p.id}`}
            tabIndex={p.id === pane ? 0 : -1}
            onClick={() => choose(p.id)}
          >
            {p.label}
          </button>
        ))}
      </nav>
      <main>
        <div id={`pane-${pane}`} role="tabpanel" aria-labelledby={`tab-${pane}`} tabIndex={0} class="tabpanel">
          <View />
        </div>
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
