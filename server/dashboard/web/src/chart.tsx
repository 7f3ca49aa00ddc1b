import { useEffect, useRef } from "preact/hooks";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

/** Colours that keep 3:1 contrast against white, told apart by dash as well as hue. */
const PALETTE = ["#1f5fbf", "#b3261e", "#1b7a3a", "#8a4b00", "#6a3fb5", "#006b75", "#a1226e", "#4d4d4d"];
const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3]];

export interface TimeChartProps {
  /** Names the chart for screen readers (the figures are also in the tables beside it). */
  readonly title: string;
  /** Unix seconds. */
  readonly times: readonly number[];
  readonly series: readonly Series[];
  readonly height?: number;
}

/** A time-series chart (uPlot) that follows its container's width. */
export function TimeChart({ title, times, series, height = 220 }: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join("\u0000");

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const options: Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length]!,
          width: 2,
          dash: DASHES[i % DASHES.length]!,
          points: { show: times.length < 30 },
        })),
      ],
    };
    plot.current = new uPlot(options, data(times, series), el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // The plot is rebuilt only when the series change; new points go through setData below.
  }, [shape, height]);

  useEffect(() => {
    plot.current?.setData(data(times, series));
  }, [times, series]);

  return <figure class="chart" role="img" aria-label={title} ref={box} data-points={times.length} />;
}

function data(times: readonly number[], series: readonly Series[]): AlignedData {
  return [times as number[], ...series.map((s) => s.values as (number | null)[])];
}
