import { Box, Table, Text } from "@chakra-ui/react";
import { useEffect, useState } from "react";

import { ApiError, get } from "../api";
import { Loading, Notice, PageTitle, StateBadge } from "../components/common";

type Check = { name: string; status: string; message?: string; detail?: string };
type Report = { status: string; checked_at?: string; checks: Check[] | Record<string, Check> };

export const Health = () => {
  const [report, setReport] = useState<Report>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    get<Report>("/health").then(setReport).catch((err: ApiError) => setError(err.message));
  }, []);
  const checks = report ? (Array.isArray(report.checks) ? report.checks
    : Object.entries(report.checks).map(([name, c]) => ({ ...c, name: c.name ?? name }))) : [];
  return (
    <Box data-testid="fn-health">
      <PageTitle>Health</PageTitle>
      {error ? <Notice status="error">{error}</Notice> : null}
      {!report ? (error ? null : <Loading />) : (
        <>
          <Text mb={3} data-testid="fn-health-status">Overall: <StateBadge state={report.status} /></Text>
          <Table.Root size="sm">
            <Table.Header><Table.Row><Table.ColumnHeader>Check</Table.ColumnHeader>
              <Table.ColumnHeader>Status</Table.ColumnHeader><Table.ColumnHeader>Detail</Table.ColumnHeader></Table.Row></Table.Header>
            <Table.Body>{checks.map((c) => (
              <Table.Row key={c.name}><Table.Cell>{c.name}</Table.Cell><Table.Cell><StateBadge state={c.status} /></Table.Cell>
                <Table.Cell>{c.message ?? c.detail ?? ""}</Table.Cell></Table.Row>))}</Table.Body>
          </Table.Root>
        </>
      )}
    </Box>
  );
};
