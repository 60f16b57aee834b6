using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace CoLM.Telemetry;

/// <summary>
/// Renders a collection of OpenTelemetry metrics in the Prometheus text exposition format 0.0.4:
/// names with '.' and other characters outside [a-zA-Z0-9_:] turned into '_', the unit appended
/// (s -> _seconds, By -> _bytes, 1 -> _ratio on gauges; annotations such as {nats} are dropped),
/// monotonic sums as counters with _total, non-monotonic sums and gauges as gauges, explicit-bucket
/// histograms as _bucket{le}/_sum/_count. Labels are the meter's tags (run) followed by the point's.
/// Several meters may report the same instrument (one <see cref="ColmInstruments"/> per run): their
/// series share one HELP/TYPE block. Exponential histograms are not used by CoLM and are skipped.
/// </summary>
internal static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private sealed class Family(string name, string type, string help)
    {
        public string Name { get; } = name;
        public string Type { get; } = type;
        public string Help { get; } = help;
        public StringBuilder Samples { get; } = new();
    }

    public static string Render(IEnumerable<Metric> metrics)
    {
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var order = new List<Family>();
        foreach (var metric in metrics)
        {
            string? type = metric.MetricType switch
            {
                MetricType.LongSum or MetricType.DoubleSum => "counter",
                MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic
                    or MetricType.LongGauge or MetricType.DoubleGauge => "gauge",
                MetricType.Histogram => "histogram",
                _ => null,
            };
            if (type is null)
                continue;
            string name = MetricName(metric.Name, metric.Unit, type);
            if (!families.TryGetValue(name, out var family))
            {
                family = new Family(name, type, metric.Description ?? "");
                families.Add(name, family);
                order.Add(family);
            }
            else if (family.Type != type)
            {
                continue; // the same name with another type would make the scrape invalid
            }
            foreach (ref readonly var point in metric.GetMetricPoints())
                WritePoint(family, metric, point);
        }

        var text = new StringBuilder();
        foreach (var family in order)
        {
            if (family.Help.Length > 0)
                text.Append("# HELP ").Append(family.Name).Append(' ').Append(EscapeHelp(family.Help)).Append('\n');
            text.Append("# TYPE ").Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            text.Append(family.Samples);
        }
        return text.ToString();
    }

    /// <summary>The Prometheus name of an OpenTelemetry instrument; counters end in _total.</summary>
    public static string MetricName(string name, string? unit, string type)
    {
        string baseName = Sanitize(name, allowColon: true);
        string suffix = UnitSuffix(unit, type);
        if (suffix.Length > 0 && !baseName.EndsWith("_" + suffix, StringComparison.Ordinal))
            baseName += "_" + suffix;
        if (type == "counter" && !baseName.EndsWith("_total", StringComparison.Ordinal))
            baseName += "_total";
        return baseName;
    }

    private static string UnitSuffix(string? unit, string type)
    {
        if (string.IsNullOrWhiteSpace(unit))
            return "";
        // Annotations in braces carry no unit ({nats}, {examples}); "1" is a ratio only on gauges.
        string plain = System.Text.RegularExpressions.Regex.Replace(unit, @"\{[^}]*\}", "").Trim();
        return plain switch
        {
            "" => "",
            "1" => type == "gauge" ? "ratio" : "",
            "s" => "seconds",
            "ms" => "milliseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "%" => "percent",
            _ => Sanitize(plain, allowColon: false).Trim('_'),
        };
    }

    private static void WritePoint(Family family, Metric metric, in MetricPoint point)
    {
        var labels = new List<KeyValuePair<string, object?>>();
        if (metric.MeterTags is { } meterTags)
            labels.AddRange(meterTags);
        foreach (var tag in point.Tags)
            labels.Add(tag);

        switch (metric.MetricType)
        {
            case MetricType.LongSum:
            case MetricType.LongSumNonMonotonic:
                Sample(family.Samples, family.Name, labels, null, point.GetSumLong().ToString(CultureInfo.InvariantCulture));
                break;
            case MetricType.DoubleSum:
            case MetricType.DoubleSumNonMonotonic:
                Sample(family.Samples, family.Name, labels, null, Number(point.GetSumDouble()));
                break;
            case MetricType.LongGauge:
                Sample(family.Samples, family.Name, labels, null, point.GetGaugeLastValueLong().ToString(CultureInfo.InvariantCulture));
                break;
            case MetricType.DoubleGauge:
                Sample(family.Samples, family.Name, labels, null, Number(point.GetGaugeLastValueDouble()));
                break;
            case MetricType.Histogram:
                long cumulative = 0;
                foreach (var bucket in point.GetHistogramBuckets())
                {
                    cumulative += bucket.BucketCount;
                    string le = double.IsPositiveInfinity(bucket.ExplicitBound) ? "+Inf" : Number(bucket.ExplicitBound);
                    Sample(family.Samples, family.Name + "_bucket", labels, le, cumulative.ToString(CultureInfo.InvariantCulture));
                }
                Sample(family.Samples, family.Name + "_sum", labels, null, Number(point.GetHistogramSum()));
                Sample(family.Samples, family.Name + "_count", labels, null,
                    point.GetHistogramCount().ToString(CultureInfo.InvariantCulture));
                break;
        }
    }

    private static void Sample(StringBuilder text, string name, List<KeyValuePair<string, object?>> labels, string? le,
        string value)
    {
        text.Append(name);
        if (labels.Count > 0 || le is not null)
        {
            text.Append('{');
            bool first = true;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (key, raw) in labels)
            {
                string label = Sanitize(key, allowColon: false);
                if (label == "le" || !seen.Add(label))
                    continue; // a point tag repeating a meter tag, or one that would clash with le
                if (!first) text.Append(',');
                first = false;
                text.Append(label).Append("=\"").Append(EscapeLabel(LabelValue(raw))).Append('"');
            }
            if (le is not null)
            {
                if (!first) text.Append(',');
                text.Append("le=\"").Append(le).Append('"');
            }
            text.Append('}');
        }
        // No timestamp: the scraper stamps samples with the scrape time, which keeps staleness handling right.
        text.Append(' ').Append(value).Append('\n');
    }

    private static string LabelValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => Number(d),
        float f => Number(f),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    public static string Number(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : value.ToString("R", CultureInfo.InvariantCulture);

    private static string Sanitize(string name, bool allowColon)
    {
        var s = new StringBuilder(name.Length + 1);
        foreach (char c in name)
        {
            bool ok = c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_' || (allowColon && c == ':');
            s.Append(ok ? c : '_');
        }
        if (s.Length == 0 || char.IsAsciiDigit(s[0]))
            s.Insert(0, '_');
        return s.ToString();
    }

    private static string EscapeHelp(string help) => help.Replace("\\", "\\\\").Replace("\n", "\\n");

    private static string EscapeLabel(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
