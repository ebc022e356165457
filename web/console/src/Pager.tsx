// Pager is the Previous/Next pair under every list. pages[i] is the page
// token of page i (the first page has none); next is the token of the page
// after the one shown, empty on the last page (or while it loads).
export function Pager({ label, pages, setPages, next }: { label: string; pages: string[]; setPages: (p: string[]) => void; next: string | undefined }) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
        Previous page
      </button>
      <button type="button" disabled={!next} onClick={() => next && setPages([...pages, next])}>
        Next page
      </button>
    </nav>
  );
}
