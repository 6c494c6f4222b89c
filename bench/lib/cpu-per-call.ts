/**
 * CPU time per call of each operation, over `runs` runs of `calls` sequential calls: the minimum
 * and the median, printed one line per operation. CPU time, not wall time, so it holds on a busy
 * machine.
 */
export async function printCpuPerCall(
  ops: Record<string, (i: number) => Promise<unknown>>,
  calls: number,
  runs: number,
): Promise<void> {
  const width = Math.max(...Object.keys(ops).map((name) => name.length)) + 1;
  for (const [name, op] of Object.entries(ops)) {
    const perCall: number[] = [];
    for (let run = 0; run < runs; run++) {
      const start = process.cpuUsage();
      for (let i = 0; i < calls; i++) await op(i);
      const used = process.cpuUsage(start);
      perCall.push(((used.user + used.system) * 1000) / calls);
    }
    perCall.sort((a, b) => a - b);
    const median = perCall[Math.floor(runs / 2)]!;
    console.log(
      `${name.padEnd(width)} min ${perCall[0]!.toFixed(0)} ns  median ${median.toFixed(0)} ns per call`,
    );
  }
}
