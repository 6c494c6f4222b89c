import type { AuditDriver } from '../../driver.js';
import type { StoreDeps } from './deps.js';

export function hybridAudit({ router: { read }, write }: StoreDeps): AuditDriver {
  return {
    append: (entry) =>
      write(
        'audit',
        'audit.append',
        (d) => d.audit.append(entry),
        (_d, e) => [{ t: 'audit', entry: e }],
        // Appends cannot undo one another: replayed in any order they are the same set.
        { ordered: false },
      ),
    query: (query) => read('audit', 'audit.query', (d) => d.audit.query(query)),
  };
}
