/**
 * Process and runtime metrics, with the names operators know from the Prometheus Node.js
 * client: RSS, V8 heap used/total, external memory, CPU seconds, start time, GC pause
 * time and count by kind, event-loop lag (mean, max, p99 since the previous scrape) and
 * utilisation, and active handles. Everything but GC pauses is read at scrape time from
 * node:process and node:perf_hooks; GC pauses are summed by a PerformanceObserver.
 */
import { constants as perfConstants, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import type { EventLoopUtilization, IntervalHistogram } from 'node:perf_hooks';
import type { Meter } from '@opentelemetry/api';

/** perf_hooks GC kind -> the `kind` label. */
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface ProcessMetricsHandle {
  /** Stops the GC observer and the event-loop delay monitor. */
  stop(): void;
}

/** Registers the process metrics on `meter`; call stop() when the meter goes away. */
export function startProcessMetrics(meter: Meter): ProcessMetricsHandle {
  const rss = meter.createObservableGauge('process.resident_memory', {
    description: 'Resident set size of the process',
    unit: 'By',
  });
  const heapUsed = meter.createObservableGauge('nodejs.heap_size_used', {
    description: 'V8 heap in use',
    unit: 'By',
  });
  const heapTotal = meter.createObservableGauge('nodejs.heap_size_total', {
    description: 'V8 heap reserved',
    unit: 'By',
  });
  const external = meter.createObservableGauge('nodejs.external_memory', {
    description: 'Memory of C++ objects bound to JavaScript (Buffers included)',
    unit: 'By',
  });
  const cpu = meter.createObservableCounter('process.cpu', {
    description: 'User and system CPU time of the process',
    unit: 's',
  });
  const start = meter.createObservableGauge('process.start_time', {
    description: 'Start time of the process since the Unix epoch',
    unit: 's',
  });
  const lag = meter.createObservableGauge('nodejs.eventloop_lag', {
    description: 'Mean event-loop delay since the previous scrape',
    unit: 's',
  });
  const lagMax = meter.createObservableGauge('nodejs.eventloop_lag_max', {
    description: 'Largest event-loop delay since the previous scrape',
    unit: 's',
  });
  const lagP99 = meter.createObservableGauge('nodejs.eventloop_lag_p99', {
    description: '99th percentile of the event-loop delay since the previous scrape',
    unit: 's',
  });
  const utilization = meter.createObservableGauge('nodejs.eventloop_utilization_ratio', {
    description: 'Share of time the event loop was busy since the previous scrape (0 to 1)',
    unit: '1',
  });
  const handles = meter.createObservableGauge('nodejs.active_handles', {
    description: 'Handles and requests keeping the event loop alive (sockets, timers...)',
    unit: '{handle}',
  });
  const gcPause = meter.createObservableCounter('nodejs.gc.pause', {
    description:
      'Time spent in garbage collection pauses, by kind (minor, major, incremental, weakcb)',
    unit: 's',
  });
  const gcPauses = meter.createObservableCounter('nodejs.gc.pauses', {
    description: 'Garbage collection pauses, by kind',
    unit: '{pause}',
  });
  // Every kind from the start, at zero (rate() needs a series before the first pause).
  const gcTotals = new Map<
    string,
    { seconds: number; count: number; attributes: { kind: string } }
  >();
  for (const kind of [...Object.values(GC_KINDS), 'other']) {
    gcTotals.set(kind, { seconds: 0, count: 0, attributes: { kind } });
  }

  const startedS = Math.round(Date.now() / 1000 - process.uptime());
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let elu: EventLoopUtilization = performance.eventLoopUtilization();

  meter.addBatchObservableCallback(
    obs => {
      const mem = process.memoryUsage();
      obs.observe(rss, mem.rss);
      obs.observe(heapUsed, mem.heapUsed);
      obs.observe(heapTotal, mem.heapTotal);
      obs.observe(external, mem.external);
      const usage = process.cpuUsage();
      obs.observe(cpu, (usage.user + usage.system) / 1e6);
      obs.observe(start, startedS);
      // The histogram is NaN-free only once it has a sample; report 0 until then.
      const sampled = delay.count > 0;
      obs.observe(lag, sampled ? delay.mean / 1e9 : 0);
      obs.observe(lagMax, sampled ? delay.max / 1e9 : 0);
      obs.observe(lagP99, sampled ? delay.percentile(99) / 1e9 : 0);
      delay.reset();
      const now = performance.eventLoopUtilization();
      obs.observe(utilization, performance.eventLoopUtilization(now, elu).utilization);
      elu = now;
      obs.observe(handles, process.getActiveResourcesInfo().length);
      for (const g of gcTotals.values()) {
        obs.observe(gcPause, g.seconds, g.attributes);
        obs.observe(gcPauses, g.count, g.attributes);
      }
    },
    [
      rss,
      heapUsed,
      heapTotal,
      external,
      cpu,
      start,
      lag,
      lagMax,
      lagP99,
      utilization,
      handles,
      gcPause,
      gcPauses,
    ]
  );

  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      // Node 16+ puts the GC kind in `detail` (the typings of PerformanceEntry lack it).
      const detail = (entry as { detail?: { kind?: number } }).detail;
      const totals = gcTotals.get(GC_KINDS[detail?.kind ?? -1] ?? 'other');
      if (!totals) continue;
      totals.seconds += entry.duration / 1000;
      totals.count++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  return {
    stop: () => {
      observer.disconnect();
      delay.disable();
    },
  };
}
