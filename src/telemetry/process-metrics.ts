/**
 * Process and runtime metrics, with the names operators know from the Prometheus Node.js
 * client: RSS, V8 heap used/total, external memory, CPU seconds, start time, GC pause
 * time by kind, event-loop lag (mean, max, p99 since the previous scrape) and
 * utilisation, and active handles. Everything but GC pauses is read at scrape time from
 * node:process and node:perf_hooks; GC pauses come from a PerformanceObserver.
 */
import { constants as perfConstants, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import type { EventLoopUtilization, IntervalHistogram } from 'node:perf_hooks';
import type { Meter } from '@opentelemetry/api';

/** GC pause buckets, seconds (minor collections are well under a millisecond). */
export const GC_DURATION_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

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
  const gc = meter.createHistogram('nodejs.gc_duration', {
    description: 'Garbage collection pauses, by kind (minor, major, incremental, weakcb)',
    unit: 's',
    advice: { explicitBucketBoundaries: GC_DURATION_BUCKETS_S },
  });

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
    },
    [rss, heapUsed, heapTotal, external, cpu, start, lag, lagMax, lagP99, utilization, handles]
  );

  const observer = new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      // Node 16+ puts the GC kind in `detail` (the typings of PerformanceEntry lack it).
      const detail = (entry as { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? -1] ?? 'other';
      gc.record(entry.duration / 1000, { kind });
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
