import { useEffect, useState } from "react";

// A router of a few lines: the console's routes are paths without a file
// extension, which the server answers with index.html.
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPath(window.location.pathname);
    window.addEventListener("popstate", update);
    window.addEventListener("latchkey:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("latchkey:navigate", update);
    };
  }, []);
  return path;
}

export function navigate(to: string) {
  if (to !== window.location.pathname + window.location.search) {
    window.history.pushState(null, "", to);
    window.dispatchEvent(new Event("latchkey:navigate"));
  }
}

// linkProps makes an <a> navigate in place on a plain click, and behave as a
// link otherwise (new tab, copy address).
export function linkProps(to: string) {
  return {
    href: to,
    onClick: (e: React.MouseEvent<HTMLAnchorElement>) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(to);
    },
  };
}
