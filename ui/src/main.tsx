// The Failure Notification app inside the Airflow 3 UI (plugin react_apps).
// Rendered by the UI with {dagId, runId, taskId, mapIndex}: with a dagId it is the DAG page's
// "Failure notification" tab, otherwise the nav entry's app with its own pages under /plugin/failnotify.
import { Box, Button, HStack } from "@chakra-ui/react";
import { Route, Routes, useLocation, useNavigate } from "react-router-dom";

import { NAV_BASE } from "./components/common";
import { Configure } from "./pages/Configure";
import { DagTab } from "./pages/DagTab";
import { Errors } from "./pages/Errors";
import { Health } from "./pages/Health";
import { Integrations } from "./pages/Integrations";
import { Settings } from "./pages/Settings";

export type PluginProps = { dagId?: string; runId?: string; taskId?: string; mapIndex?: string };

const TABS: Array<[string, string]> = [
  ["", "Integrations"],
  ["/errors", "Error Management"],
  ["/settings", "Settings"],
  ["/health", "Health"],
];

const TabBar = () => {
  const navigate = useNavigate();
  const { pathname } = useLocation();
  const current = pathname.split(NAV_BASE)[1] ?? "";
  const active = (path: string) =>
    path === "" ? current === "" || current === "/" || current.startsWith("/configure") || current.startsWith("/bulk")
      : current.startsWith(path);
  return (
    <HStack gap={2} mb={4} borderBottomWidth="1px" borderColor="border.emphasized" pb={2} data-testid="fn-tabs">
      {TABS.map(([path, label]) => (
        <Button key={label} size="sm" variant={active(path) ? "solid" : "ghost"}
          onClick={() => navigate(`${NAV_BASE}${path}`)}>{label}</Button>
      ))}
    </HStack>
  );
};

const NavApp = () => (
  <Box p={4} data-testid="failnotify-app">
    <TabBar />
    <Routes>
      <Route index element={<Integrations />} />
      <Route path="configure/:dagId" element={<Configure />} />
      <Route path="errors" element={<Errors />} />
      <Route path="settings" element={<Settings />} />
      <Route path="health" element={<Health />} />
      <Route path="*" element={<Integrations />} />
    </Routes>
  </Box>
);

const FailnotifyPlugin = (props: PluginProps) =>
  props.dagId ? <DagTab dagId={props.dagId} /> : <NavApp />;

export default FailnotifyPlugin;
