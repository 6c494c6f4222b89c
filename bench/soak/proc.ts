/**
 * What a process tree holds right now, read from /proc (Linux): resident memory summed over its
 * processes, and their established TCP connections to given server ports. Counting the tree's own
 * sockets attributes connections to this service alone, while other clients share the servers.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface TreeSample {
  /** Processes in the tree. */
  processes: number;
  /** Sum of VmRSS over the tree, bytes. */
  rssBytes: number;
  /** Established connections to each requested remote port. */
  connections: Record<number, number>;
}

/** `root` and every process descended from it. */
export function sampleTree(root: number, ports: number[]): TreeSample {
  const pids = treePids(root);
  let rssBytes = 0;
  const inodes = new Set<string>();
  for (const pid of pids) {
    rssBytes += rssOf(pid);
    for (const inode of socketInodes(pid)) inodes.add(inode);
  }
  const remotePorts = establishedRemotePorts(pids[0]);
  const connections: Record<number, number> = Object.fromEntries(ports.map((p) => [p, 0]));
  for (const inode of inodes) {
    const port = remotePorts.get(inode);
    if (port !== undefined && port in connections) connections[port]! += 1;
  }
  return { processes: pids.length, rssBytes, connections };
}

/** `root` and its descendants (field 4 of /proc/<pid>/stat is the parent). */
function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may hold spaces: fields after its closing parenthesis.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // Exited while listing.
    }
  }
  const pids = [root];
  for (let i = 0; i < pids.length; i++) pids.push(...(children.get(pids[i]!) ?? []));
  return pids;
}

function rssOf(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(target);
        if (inode) inodes.push(inode[1]!);
      } catch {
        // Closed while listing.
      }
    }
  } catch {
    // Exited.
  }
  return inodes;
}

/** inode → remote port of every ESTABLISHED TCP socket (IPv4 and IPv6) in the tree's network namespace. */
function establishedRemotePorts(pid: number | undefined): Map<string, number> {
  const ports = new Map<string, number>();
  const base = pid === undefined ? '/proc/net' : `/proc/${pid}/net`;
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${base}/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st … inode (column 10); state 01 = ESTABLISHED.
      if (cols.length < 10 || cols[3] !== '01') continue;
      const remotePort = Number.parseInt(cols[2]!.split(':')[1]!, 16);
      ports.set(cols[9]!, remotePort);
    }
  }
  return ports;
}
