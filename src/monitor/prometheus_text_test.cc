#include "monitor/prometheus_text.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace gpurm {
namespace {

TEST(PrometheusTextTest, WritesHelpTypeAndSamples) {
  PrometheusText out;
  out.Family("gpurm_gpu_temperature_celsius", "gauge", "GPU temperature.");
  out.Sample("gpurm_gpu_temperature_celsius", {{"node", "n1"}, {"gpu", "0"}}, 41.5);
  out.Sample("gpurm_gpu_temperature_celsius", {}, 7);
  EXPECT_EQ(out.text(),
            "# HELP gpurm_gpu_temperature_celsius GPU temperature.\n"
            "# TYPE gpurm_gpu_temperature_celsius gauge\n"
            "gpurm_gpu_temperature_celsius{node=\"n1\",gpu=\"0\"} 41.5\n"
            "gpurm_gpu_temperature_celsius 7\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  PrometheusText out;
  out.Family("m", "gauge", "a \\ b\nc \"quoted\"");
  out.Sample("m", {{"model", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(out.Take(),
            "# HELP m a \\\\ b\\nc \"quoted\"\n"
            "# TYPE m gauge\n"
            "m{model=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(PrometheusTextTest, RenderedLabelsWriteWhatSampleWrites) {
  const MetricLabels labels = {{"route", "/a\"b"}, {"model", "x\\y\nz"}};
  PrometheusText direct;
  direct.Sample("m", {{"route", "/a\"b"}, {"model", "x\\y\nz"}, {"le", "0.5"}}, 3);
  direct.Sample("m", labels, 4);
  direct.Sample("m", {}, 5);
  PrometheusText rendered;
  const std::string once = PrometheusText::RenderLabels(labels);
  rendered.SampleRendered("m", once, PrometheusText::RenderLabels({{"le", "0.5"}}), 3);
  rendered.SampleRendered("m", once, {}, 4);
  rendered.SampleRendered("m", {}, {}, 5);
  EXPECT_EQ(rendered.text(), direct.text());
}

TEST(PrometheusTextTest, RenderedOnceWritesWhatFamilyAndSampleWrite) {
  const std::string labels = PrometheusText::RenderLabels({{"route", "/a\"b"}});
  PrometheusText direct;
  direct.Family("m", "counter", "Help \\ with\nbreaks.");
  direct.SampleRendered("m", labels, PrometheusText::RenderLabels({{"le", "1"}}), 2);
  direct.SampleRendered("m", {}, {}, 0.5);
  direct.Family("s", "gauge", "One sample.");
  direct.Sample("s", {}, 7);
  PrometheusText rendered;
  rendered.AppendRendered(PrometheusText::RenderFamily("m", "counter", "Help \\ with\nbreaks."));
  rendered.SampleAfter(
      PrometheusText::RenderSampleStart("m", labels, PrometheusText::RenderLabels({{"le", "1"}})),
      2);
  rendered.SampleAfter(PrometheusText::RenderSampleStart("m", {}), 0.5);
  const PrometheusScalar scalar("s", "gauge", "One sample.");
  scalar.Write(rendered, 7);
  EXPECT_EQ(rendered.text(), direct.text());
  EXPECT_EQ(rendered.text(),
            "# HELP m Help \\\\ with\\nbreaks.\n"
            "# TYPE m counter\n"
            "m{route=\"/a\\\"b\",le=\"1\"} 2\n"
            "m 0.5\n"
            "# HELP s One sample.\n"
            "# TYPE s gauge\n"
            "s 7\n");
}

TEST(PrometheusTextTest, FormatsSpecialAndLargeValues) {
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(85520809984.0), "85520809984");
  EXPECT_EQ(FormatMetricValue(0.0025), "0.0025");
  // Integers (counters, bytes) in plain digits up to 2^53, not "1e+06".
  EXPECT_EQ(FormatMetricValue(1000000.0), "1000000");
  EXPECT_EQ(FormatMetricValue(-42.0), "-42");
  EXPECT_EQ(FormatMetricValue(0.0), "0");
  EXPECT_EQ(FormatMetricValue(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(-2.5), "-2.5");
}

}  // namespace
}  // namespace gpurm
