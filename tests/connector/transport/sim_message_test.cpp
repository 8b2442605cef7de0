// Integration: confirmations fetched from the simulator through the transport are understood by
// the message layer (classification, urn:de-mail XML, correlation by X-de-mail-private-id).
#include <gtest/gtest.h>

#include <memory>

#include "demail/connector/message/inbound.h"
#include "demail/connector/transport/json_api_binding.h"
#include "sim_process.h"

using namespace demail::connector;
using demail::connector::testing::SimProcess;

TEST(TransportSimMessages, ConfirmationsClassifyAndCorrelate) {
    SimProcess sim;
    PemClientCredentials creds(sim.clientCert(), sim.clientKey());
    JsonApiConnection transport(sim.endpoint(), creds);
    const std::string sender = "poststelle@firma.de-mail.de";
    SubmitOptions opts;
    opts.personal = true;
    opts.dispatchConfirmation = true;
    opts.receiptConfirmation = true;
    opts.retrieveConfirmation = true;
    Submission s{"queue-77", sender,
                 "From: " + sender +
                     "\r\nTo: poststelle@standort-b.firma.de-mail.de\r\nSubject: Bescheid\r\n"
                     "X-de-mail-private-id: queue-77\r\n\r\nText\r\n",
                 opts};
    ASSERT_TRUE(transport.submit(s).ok());
    auto delivered = transport.listInbound("poststelle@standort-b.firma.de-mail.de");
    ASSERT_TRUE(delivered.ok());
    ASSERT_EQ(delivered.value().size(), 1u);
    auto copy = transport.fetch(delivered.value()[0].id);  // triggers the Abholbestätigung
    ASSERT_TRUE(copy.ok());
    EXPECT_EQ(classifyInbound(copy.value()).kind, InboundKind::Normal);

    auto inbox = transport.listInbound(sender);
    ASSERT_TRUE(inbox.ok());
    int dispatch = 0, receipt = 0, retrieve = 0;
    for (const auto& ref : inbox.value()) {
        auto data = transport.fetch(ref.id);
        ASSERT_TRUE(data.ok());
        InboundClassification c = classifyInbound(data.value());
        ASSERT_TRUE(c.error.empty()) << c.error;
        dispatch += c.kind == InboundKind::DispatchConfirmation;
        receipt += c.kind == InboundKind::ReceiptConfirmation;
        retrieve += c.kind == InboundKind::RetrieveConfirmation;
        std::string error;
        auto xml = confirmationXmlOf(data.value(), error);
        ASSERT_TRUE(xml) << error;
        EXPECT_EQ(xml->rootElement, "Acknowledge-Message");
        EXPECT_EQ(xml->metadataValue("X-de-mail-private-id").value_or(""), "queue-77");
        EXPECT_EQ(correlate(c, xml).value_or(""), "queue-77");
        EXPECT_EQ(c.kind == InboundKind::RetrieveConfirmation, !xml->deliveryTime.empty());
    }
    EXPECT_EQ(dispatch, 1);
    EXPECT_EQ(receipt, 1);
    EXPECT_EQ(retrieve, 1);
}
